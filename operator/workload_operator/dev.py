"""`workload-operator dev`: a control plane, the operator, a simulated kubelet and the examples, in one command.

It shows a live table of the workloads as they move (like `kubectl get wl -w`) until Ctrl-C (or, with
--until-settled, until every example has finished), then stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import sys
import threading
import time
from typing import Any, TextIO

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster.control_plane import install_crd
from workload_operator.devcluster.watching import watch
from workload_operator.lifecycle.states import TERMINAL

CANCEL_AFTER = f"{GROUP}/dev-cancel-after-seconds"
COLUMNS = "{:<8} {:<14} {:<11} {:>8}  {:<8} {}"


def load_examples(folder: pathlib.Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(folder.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc and doc.get("kind") == "Workload"]
    return documents


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
                 out: TextIO, watched: set[tuple[str, str]], settled: asyncio.Event) -> None:
    """Print a line whenever a workload's state, attempts or reason changes; set ``settled`` when all end."""
    print(COLUMNS.format("TIME", "NAME", "STATE", "ATTEMPTS", "TYPE", "REASON"), file=out, flush=True)
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
            stamp = f"+{time.monotonic() - started:.1f}s"
            print(COLUMNS.format(stamp, key[1], *row), file=out, flush=True)
        states[key] = row[0]
        if watched and all(states.get(k) in TERMINAL for k in watched):
            settled.set()


async def dev(examples: pathlib.Path, *, kubeconfig: str | None = None, until_settled: bool = False,
              timeout: float | None = None, verbose: bool = False, out: TextIO = sys.stdout) -> int:
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
            print(f"using the cluster of {path}; the simulated kubelet is off", file=out)
        elif (found := control_plane.binaries()) is not None:
            print(f"starting etcd and kube-apiserver from {found[0].parent}", file=out, flush=True)
            path = await asyncio.to_thread(stack.enter_context, control_plane.real_control_plane(*found))
        else:
            print("no kube-apiserver given (KUBEBUILDER_ASSETS, or TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD): "
                  "using the emulated API, which has no schema validation and no CEL rules", file=out)
            path = await stack.enter_async_context(control_plane.emulated_control_plane())
        os.environ["KUBECONFIG"] = str(path)
        print(f"kubeconfig: {path}", file=out, flush=True)

        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(path), client_configuration=configuration)
        api_client = kubernetes.client.ApiClient(configuration)
        stack.callback(api_client.close)
        custom = kubernetes.client.CustomObjectsApi(api_client)
        if simulate and found is not None:
            await asyncio.to_thread(install_crd, api_client)
        if simulate:
            with contextlib.suppress(ApiException):
                await asyncio.to_thread(kubernetes.client.CoreV1Api(api_client).create_namespace,
                                        {"metadata": {"name": "default"}})

        stop_operator = asyncio.Event()
        tasks = [asyncio.create_task(kopf.operator(clusterwide=True, standalone=True, stop_flag=stop_operator))]
        if simulate:
            tasks.append(asyncio.create_task(SimulatedKubelet(api_client).run()))
        applied = {await _apply(custom, example): example for example in load_examples(examples)}
        for (namespace, name), example in applied.items():
            if (seconds := (example["metadata"].get("annotations") or {}).get(CANCEL_AFTER)) is not None:
                tasks.append(asyncio.create_task(_cancel_later(custom, namespace, name, float(seconds))))
        settled, interrupted = asyncio.Event(), asyncio.Event()
        tasks.append(asyncio.create_task(_table(custom, stop_watching, started, out, set(applied), settled)))

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupted.set)
        waits = [asyncio.create_task(interrupted.wait())] + ([asyncio.create_task(settled.wait())] if until_settled else [])
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        outcome = "interrupted" if interrupted.is_set() else "every example finished" if settled.is_set() else "timed out"
        print(f"stopping ({outcome}) ...", file=out, flush=True)

        stop_operator.set()
        stop_watching.set()
        for task in [*waits, *tasks[1:]]:
            task.cancel()
        await asyncio.gather(*waits, *tasks[1:], return_exceptions=True)
        await asyncio.wait_for(tasks[0], timeout=30)
    print("stopped; nothing left running", file=out, flush=True)
    return 0 if done or interrupted.is_set() else 1


def _quiet_logs(verbose: bool) -> None:
    """The table is the output; the operator's logs only when asked, warnings always."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        audit = logging.getLogger("workload_operator.audit")
        audit.addHandler(logging.NullHandler())  # keeps the operator from adding its stderr audit stream
        audit.propagate = False
        for name in ("kopf", "aiohttp.access", "kmock"):
            logging.getLogger(name).setLevel(logging.WARNING)
