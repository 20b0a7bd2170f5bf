"""`workload-operator dev`: a control plane, the operator, a simulated kubelet and the examples, in one command.

It shows a live table of the workloads as they move (like `kubectl get mlwl -w`) until Ctrl-C (or, with
--until-settled, until every example has finished), then stops everything it started and removes its
temporary folder: on SIGINT, SIGTERM and SIGHUP (a closed terminal) alike, and when its output is closed
(`dev | tee dev.log` interrupted, `dev | head`), which it notices without waiting for its next line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.dashboard import DASHBOARD_PORT
from workload_operator.devcluster.control_plane import install_crd
from workload_operator.devcluster.watching import watch
from workload_operator.lifecycle.states import TERMINAL

CANCEL_AFTER = f"{GROUP}/dev-cancel-after-seconds"
COLUMNS = "{:<8} {:<14} {:<11} {:>8}  {:<8} {}"
STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


class Stop:
    """Why dev stops: the first stop signal or a closed output (``reason``, a future), caught from the start."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.reason = loop, loop.create_future()

    def __call__(self, why: str) -> None:
        if not self.reason.done():
            self.reason.set_result(why)

    def catch_signals(self) -> None:
        for sig, why in STOP_SIGNALS.items():
            self.loop.add_signal_handler(sig, self, why)

    def release_signals(self) -> None:
        for sig in STOP_SIGNALS:
            self.loop.remove_signal_handler(sig)


class Output:
    """Where dev prints. A write that fails (a closed pipe, a terminal gone) or the reader of a pipe going away
    calls ``closed`` once, so that dev stops and cleans up instead of dying of a BrokenPipeError; what it says
    afterwards goes to stderr while that is open, and is dropped otherwise."""

    def __init__(self, stream: TextIO, closed: Callable[[], None]) -> None:
        self.stream, self.closed, self.broken = stream, closed, False
        self._watched: tuple[asyncio.AbstractEventLoop, int] | None = None

    def print(self, line: str) -> None:
        stream = sys.stderr if self.broken else self.stream
        try:
            print(line, file=stream, flush=True)
        except (OSError, ValueError):  # EPIPE, EIO (the terminal is gone), or a closed file
            self._break()

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Notice a pipe's reader going away at once: the write end of a pipe becomes "readable" (EPOLLERR)
        only then. Other outputs (a terminal, a file) are noticed at the next write."""
        with contextlib.suppress(AttributeError, OSError, ValueError):
            fd = self.stream.fileno()
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                loop.add_reader(fd, self._reader_gone)
                self._watched = loop, fd

    def close(self) -> None:
        self._unwatch()
        if self.broken:  # else the interpreter's last flush of it fails once more, with a message on stderr
            with contextlib.suppress(AttributeError, OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)

    def _reader_gone(self) -> None:
        self._unwatch()  # the error stays: watched on, it would fire again at once, for ever
        self._break()

    def _unwatch(self) -> None:
        if self._watched is not None:
            loop, fd = self._watched
            loop.remove_reader(fd)
            self._watched = None

    def _break(self) -> None:
        if not self.broken:
            self.broken = True
            self.closed()


def load_examples(folder: pathlib.Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(folder.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc and doc.get("kind") == "Workload"]
    return documents


def service_accounts(examples: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(namespace, name) of each ServiceAccount an example's pods run as, other than the namespace's default."""
    found = set()
    for example in examples:
        pod = ((example.get("spec") or {}).get("template") or {}).get("spec") or {}
        if (account := pod.get("serviceAccountName")) and account != "default":
            found.add((example["metadata"].get("namespace", "default"), account))
    return found


async def _apply(custom: kubernetes.client.CustomObjectsApi, example: dict[str, Any]) -> tuple[str, str]:
    meta = example["metadata"]
    namespace = meta.get("namespace", "default")
    try:
        await asyncio.to_thread(custom.create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, example)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return namespace, meta["name"]


async def _cancel_later(custom: kubernetes.client.CustomObjectsApi, namespace: str, name: str, seconds: float) -> None:
    await asyncio.sleep(seconds)
    with contextlib.suppress(ApiException):  # it may have finished or gone already
        await asyncio.to_thread(custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name,
                                {"spec": {"cancel": True}}, _content_type="application/merge-patch+json")


async def _table(custom: kubernetes.client.CustomObjectsApi, stop: threading.Event, started: float,
                 out: Output, watched: set[tuple[str, str]], settled: asyncio.Event) -> None:
    """Print a line whenever a workload's state, attempts or reason changes; set ``settled`` when all end."""
    out.print(COLUMNS.format("TIME", "NAME", "STATE", "ATTEMPTS", "TYPE", "REASON"))
    last: dict[tuple[str, str], tuple[Any, ...]] = {}
    states: dict[tuple[str, str], str] = {}
    async for event in watch(custom.list_cluster_custom_object, stop, GROUP, VERSION, PLURAL):
        obj = event["object"]
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        status, spec = obj.get("status") or {}, obj.get("spec") or {}
        row = (status.get("state", "-"), status.get("attempts", 0), spec.get("type", "batch"), status.get("reason", ""))
        if event["type"] == "DELETED":
            row = ("(deleted)", *row[1:])
        if last.get(key) != row:
            last[key] = row
            out.print(COLUMNS.format(f"+{time.monotonic() - started:.1f}s", key[1], *row))
        states[key] = row[0]
        if watched and all(states.get(k) in TERMINAL for k in watched):
            settled.set()


def try_next(kubeconfig: pathlib.Path, examples: dict[tuple[str, str], dict[str, Any]], *, own_cluster: bool) -> str:
    """The one line that says which kubectl commands to try against the running dev cluster, naming a batch
    example that finishes on its own (there is something to wait for, and its Events tell the story)."""
    finishing = [key for key, example in examples.items() if (example.get("spec") or {}).get("type") != "service"
                 and CANCEL_AFTER not in (example["metadata"].get("annotations") or {})]
    namespace, name = (finishing or list(examples) or [("default", "NAME")])[0]
    # dev's own kubeconfigs have `default` as the context's namespace; a given one may have any.
    scope = f" -n {namespace}" if namespace != "default" or not own_cluster else ""
    return (f"try, in another terminal: export KUBECONFIG={kubeconfig}; kubectl get mlwl{scope} -w; "
            f"kubectl describe mlwl{scope} {name}; kubectl wait{scope} --for=condition=Finished mlwl/{name}")


async def dev(examples: pathlib.Path, *, kubeconfig: str | None = None, until_settled: bool = False,
              timeout: float | None = None, verbose: bool = False, dashboard_port: int = DASHBOARD_PORT,
              out: TextIO = sys.stdout) -> int:
    """Run it all until stopped; 0 when stopped as asked (a signal, a closed output, all settled), else 1.

    The stop signals are caught from the start, before anything is created, so that every way of stopping
    goes through the same clean-up."""
    loop = asyncio.get_running_loop()
    _quiet_kopf_streams_closed_late(loop)
    stop = Stop(loop)
    output = Output(out, lambda: stop("output closed"))
    stop.catch_signals()
    output.watch(loop)
    try:
        return await _run(examples, kubeconfig, until_settled, timeout, verbose, dashboard_port, output, stop)
    finally:
        stop.release_signals()
        output.close()


def _quiet_kopf_streams_closed_late(loop: asyncio.AbstractEventLoop) -> None:
    """kopf leaves a watch stream's generator open when its watcher is cancelled between two events; asyncio
    closes it as the loop shuts down, and kopf's streaming block then fails to close ("generator didn't stop
    after athrow()"). Harmless as the process exits: logged at debug level, not as an error with a traceback."""
    default = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        stream = context.get("asyncgen")
        code = getattr(stream, "ag_code", None)
        if code is not None and code.co_name == "infinite_watch" and "kopf" in code.co_filename:
            logging.getLogger(__name__).debug("%s: %r", context.get("message"), context.get("exception"))
        elif default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def _run(examples: pathlib.Path, kubeconfig: str | None, until_settled: bool, timeout: float | None,
               verbose: bool, dashboard_port: int, out: Output, stop: Stop) -> int:
    import kopf

    from workload_operator import handlers  # noqa: F401  (registers the operator's handlers)
    from workload_operator.devcluster import control_plane
    from workload_operator.devcluster.kubelet import SimulatedKubelet

    _quiet_logs(verbose)
    started = time.monotonic()
    stop_watching = threading.Event()
    async with contextlib.AsyncExitStack() as stack:
        simulate, found = kubeconfig is None, None
        if kubeconfig is not None:
            path = pathlib.Path(kubeconfig).expanduser()
            out.print(f"using the cluster of {path}; the simulated kubelet is off")
        elif (found := control_plane.binaries()) is not None:
            # The garbage collector and the namespace controller when there is a controller-manager (the project's
            # build has one, envtest's assets do not); the simulated kubelet stands in for the scheduler.
            controllers = control_plane.CONTROLLERS if found.controller_manager else ()
            started_what = "etcd, kube-apiserver" + (" and kube-controller-manager" if controllers else "")
            out.print(f"starting {started_what} from {found.folder}")
            plane = await asyncio.to_thread(stack.enter_context,
                                            control_plane.real_control_plane(found, controllers=controllers))
            path = plane.kubeconfig
        else:
            out.print("no kube-apiserver found (tests/controlplane/build.sh builds one; or KUBEBUILDER_ASSETS, or "
                      "TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD): using the emulated API, which has no schema "
                      "validation and no CEL rules")
            path = await stack.enter_async_context(control_plane.emulated_control_plane())
        os.environ["KUBECONFIG"] = str(path)
        out.print(f"kubeconfig: {path}")

        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(path), client_configuration=configuration)
        api_client = kubernetes.client.ApiClient(configuration)
        stack.callback(api_client.close)
        custom = kubernetes.client.CustomObjectsApi(api_client)
        if simulate and found is not None:
            await asyncio.to_thread(install_crd, api_client)
        loaded = load_examples(examples)
        if simulate:
            core = kubernetes.client.CoreV1Api(api_client)
            with contextlib.suppress(ApiException):
                await asyncio.to_thread(core.create_namespace, {"metadata": {"name": "default"}})
            # What the examples' headers ask for and a real API server checks: the ServiceAccounts their pods name.
            for namespace, account in service_accounts(loaded):
                with contextlib.suppress(ApiException):  # there already
                    await asyncio.to_thread(core.create_namespaced_service_account, namespace,
                                            {"metadata": {"name": account}})

        stop_operator, operator_ready = asyncio.Event(), asyncio.Event()
        operator = asyncio.create_task(kopf.operator(clusterwide=True, standalone=True, stop_flag=stop_operator,
                                                     ready_flag=operator_ready))
        # kopf puts its own SIGINT/SIGTERM handlers in place of dev's as it starts: it would stop by itself,
        # leave the rest running, and SIGKILL the process ten minutes later. Once it is up, dev's come back.
        ready = asyncio.ensure_future(operator_ready.wait())
        await asyncio.wait([ready, operator], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        stop.catch_signals()
        tasks: list[asyncio.Task[Any]] = []
        if simulate:
            tasks.append(asyncio.create_task(SimulatedKubelet(api_client).run()))
        applied = {await _apply(custom, example): example for example in loaded}
        for (namespace, name), example in applied.items():
            if (seconds := (example["metadata"].get("annotations") or {}).get(CANCEL_AFTER)) is not None:
                tasks.append(asyncio.create_task(_cancel_later(custom, namespace, name, float(seconds))))
        settled = asyncio.Event()
        board_url = await _serve_dashboard(stack, api_client, dashboard_port)
        out.print(f"dashboard: {board_url}")
        out.print(try_next(path, applied, own_cluster=kubeconfig is None))
        tasks.append(asyncio.create_task(_table(custom, stop_watching, started, out, set(applied), settled)))

        waits = [asyncio.ensure_future(settled.wait())] if until_settled else []
        await asyncio.wait([stop.reason, operator, *waits], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        asked = stop.reason.done() or settled.is_set()
        outcome = (stop.reason.result() if stop.reason.done() else "every example finished" if settled.is_set()
                   else "the operator stopped by itself" if operator.done() else "timed out")
        out.print(f"stopping ({outcome}) ...")

        stop_operator.set()
        stop_watching.set()
        for task in [*waits, *tasks]:
            task.cancel()
        await asyncio.gather(*waits, *tasks, return_exceptions=True)
        await asyncio.wait_for(operator, timeout=30)
    out.print("stopped; nothing left running")
    return 0 if asked else 1


async def _serve_dashboard(stack: contextlib.AsyncExitStack, api_client: kubernetes.client.ApiClient, port: int) -> str:
    """The dashboard on loopback: on ``port``, or on a free one when that is taken."""
    from workload_operator.dashboard.server import AGENT, serving
    from workload_operator.kube import Kube

    try:
        _, url = await stack.enter_async_context(serving(Kube(api_client, AGENT), port=port))
    except OSError:
        _, url = await stack.enter_async_context(serving(Kube(api_client, AGENT), port=0))
    return url


def _quiet_logs(verbose: bool) -> None:
    """The table is the output; the operator's logs only when asked, warnings always."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        audit = logging.getLogger("workload_operator.audit")
        audit.addHandler(logging.NullHandler())  # keeps the operator from adding its stderr audit stream
        audit.propagate = False
        for name in ("kopf", "aiohttp.access", "kmock"):
            logging.getLogger(name).setLevel(logging.WARNING)
