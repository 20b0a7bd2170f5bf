"""python -m benchmarks.requests [--calls 500] [--at-once 1,32] [--kubeconfig PATH]

What each kind of request the operator makes in a Workload's lifecycle costs the operator's process: the
operator's own client (``kube.py``: aiohttp on kept-alive connections, TLS to a real server) makes each kind
``--calls`` times, as the operator makes it (a status write's answer parsed into the view the next step decides
from), in chains of calls that wait for each other, one chain per Workload, ``--at-once`` chains at a time (1:
the operator's reaction to one change; 32, the operator's limit on requests in flight: a burst). The process's
CPU (user and system) for all the calls of a kind, over their number, and each call's wall time. By default on
the project's own control plane (tests/controlplane/build.sh builds it), started for each table, as the
operator's RBAC-only identity, and then also what each call cost kube-apiserver and etcd (their CPU over the same
span; nothing else uses them meanwhile, and no watch is open); ``--kubeconfig`` points it at another server (the
emulated API of the tests serves in the caller's process: the CPU figures would include the server's).

It prints a table per ``--at-once``, and what a batch lifecycle's requests add up to: the part of the operator's
CPU per lifecycle (``python -m benchmarks.lifecycle``) that goes to making its requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import pathlib
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import kubernetes

from benchmarks.apis import BenchApi, real_api
from benchmarks.lifecycle import server_cpu
from workload_operator import GROUP, KIND, PLURAL, VERSION
from workload_operator.kube import CONNECTIONS, Kube
from workload_operator.lifecycle.decide import WorkloadView, decide
from workload_operator.lifecycle.status import WorkloadStatus
from workload_operator.manifests import pod_manifest

# The requests of one batch Workload's lifecycle (benchmarks.lifecycle counts them on a real server).
LIFECYCLE = {"PATCH status": 5, "POST Event": 5, "PATCH Workload": 1, "POST pod": 1, "PATCH pod": 1}


@dataclass
class Calls:
    kind: str
    cpu: float = 0.0                                 # seconds of the process's CPU, all calls of the kind
    server: float | None = None                      # seconds of kube-apiserver's and etcd's, when known
    wall: list[float] = field(default_factory=list)  # seconds, per call

    async def time(self, call: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        result = await call
        self.wall.append(time.perf_counter() - started)
        return result

    @property
    def per_call(self) -> float:
        return self.cpu / len(self.wall)

    @property
    def server_per_call(self) -> float | None:
        return None if self.server is None else self.server / len(self.wall)

    def row(self) -> str:
        wall = statistics.median(self.wall)
        server = "–" if self.server_per_call is None else f"{self.server_per_call * 1e3:.2f}"
        return f"| {self.kind} | {len(self.wall)} | {self.per_call * 1e3:.3f} | {server} | {wall * 1e3:.2f} |"


@contextlib.asynccontextmanager
async def server(kubeconfig: pathlib.Path | None) -> AsyncIterator[tuple[pathlib.Path, pathlib.Path, str,
                                                                         BenchApi | None]]:
    """(the operator's kubeconfig, an admin's kubeconfig for the set-up, what the server is, the control plane
    started for the run)."""
    if kubeconfig is not None:
        yield kubeconfig, kubeconfig, f"the API server of {kubeconfig}", None
        return
    async with real_api() as api:
        assert api.plane is not None
        yield (api.kubeconfig, api.plane.kubeconfig,
               api.description.split(",")[0] + ", the operator's identity, over TLS", api)


def api_client(kubeconfig: pathlib.Path) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def set_up(admin: kubernetes.client.ApiClient, namespace: str, workloads: int) -> list[dict[str, Any]]:
    """The namespace (with the service account a pod needs where no controller-manager makes it) and Workloads."""
    core = kubernetes.client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": namespace}})
    with contextlib.suppress(kubernetes.client.ApiException):  # a controller-manager may have made it
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "default"}})
    custom = kubernetes.client.CustomObjectsApi(admin)
    return [custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": f"w{i}"}, "spec": {"image": "busybox"}})
        for i in range(workloads)]


async def measure(kube: Kube, workloads: list[dict[str, Any]], calls: int, api: BenchApi | None = None) -> list[Calls]:
    """Each kind ``calls`` times, as the operator makes it: one chain of calls per Workload (each call waits for
    the one before it, as the operator's steps for one Workload do), the chains at once; the process's CPU for
    the whole kind, over its calls (and the server's, on a control plane started for the run: ``api``)."""
    now = datetime.datetime.now(datetime.UTC)
    views = [WorkloadView.from_body(w) for w in workloads]
    each = max(1, calls // len(views))
    measured: list[Calls] = []

    async def kind(name: str, chain: Callable[[int, Calls], Awaitable[None]]) -> None:
        calls = Calls(name)
        cpu, served = time.process_time(), server_cpu(api) if api is not None else None
        await asyncio.gather(*(chain(w, calls) for w in range(len(views))))
        calls.cpu = time.process_time() - cpu
        if served is not None and api is not None:
            calls.server = (server_cpu(api) or 0.0) - served
        measured.append(calls)

    async def finalizer(w: int, calls: Calls) -> None:
        for i in range(each):
            views[w] = WorkloadView.from_body(await calls.time(finalizer_write(kube, views[w], i)))

    async def status(w: int, calls: Calls) -> None:
        if not views[w].has_finalizer:
            views[w] = WorkloadView.from_body(await kube.add_finalizer(views[w]))
        first = first_status(views[w], now)
        for i in range(each):
            views[w] = WorkloadView.from_body(await calls.time(status_write(kube, views[w], first, i)))

    async def event(w: int, calls: Calls) -> None:  # queued, then waited for: its sender is a background task
        for i in range(each):
            await calls.time(_posted(kube, views[w], i, now))

    created: list[dict[str, Any]] = []

    async def pod(w: int, calls: Calls) -> None:
        spec = views[w].spec
        assert spec is not None
        for i in range(each):
            created.append(await calls.time(kube.create_pod(pod_manifest(views[w], spec, attempt=i + 1), views[w].uid)))

    async def retire(w: int, calls: Calls) -> None:
        for made in created[w::len(views)]:
            meta = made["metadata"]
            await calls.time(kube.retire_pod(meta["namespace"], meta["name"], meta["uid"]))

    async def read(w: int, calls: Calls) -> None:
        for _ in range(each):
            await calls.time(kube.get_workload(views[w]))

    for name, chain in (("PATCH Workload", finalizer), ("PATCH status", status), ("POST Event", event),
                        ("POST pod", pod), ("PATCH pod", retire), ("GET Workload", read)):
        await kind(name, chain)
    return measured


def finalizer_write(kube: Kube, view: WorkloadView, i: int) -> Awaitable[dict[str, Any]]:
    """A Workload's i-th finalizer write, on and off: a JSON patch of the Workload, tested on its version."""
    return kube.add_finalizer(view) if i % 2 == 0 else kube.remove_finalizer(view)


def first_status(view: WorkloadView, now: datetime.datetime) -> WorkloadStatus:
    """The first status the operator writes for a new Workload (``queued``)."""
    status = decide(view, [], now).status
    assert status is not None
    return status


def status_write(kube: Kube, view: WorkloadView, first: WorkloadStatus, i: int) -> Awaitable[dict[str, Any]]:
    """A Workload's i-th status write, as the operator makes it (its conditional JSON patch): ``first`` again with
    another message each time, the same state (CEL allows it)."""
    return kube.write_status(view, first.model_copy(update={"message": f"{i}"}))


async def _posted(kube: Kube, view: WorkloadView, i: int, now: datetime.datetime) -> None:
    await kube.post_event(view, reason="Measured", message=f"call {i}", warning=False, now=now)
    await kube.flush()


def table(measured: list[Calls]) -> str:
    by_kind = {calls.kind: calls for calls in measured}
    per_lifecycle = sum(by_kind[kind].per_call * count for kind, count in LIFECYCLE.items())
    lines = ["| request | calls | CPU per call (ms) | kube-apiserver and etcd CPU per call (ms) | wall p50 (ms) |",
             "| --- | --- | --- | --- | --- |", *(calls.row() for calls in measured)]
    lines.append(f"\nA batch lifecycle's {sum(LIFECYCLE.values())} requests "
                 f"({', '.join(f'{n} {kind}' for kind, n in LIFECYCLE.items())}): {per_lifecycle * 1e3:.1f} ms of CPU")
    served = [by_kind[kind].server_per_call for kind in LIFECYCLE]
    if all(s is not None for s in served):
        on_server = sum(s * count for s, count in zip(served, LIFECYCLE.values()) if s is not None)
        lines[-1] += f"; kube-apiserver and etcd: {on_server * 1e3:.1f} ms"
    return "\n".join(lines)


async def run(kubeconfig: pathlib.Path | None, calls: int, at_once: int) -> tuple[list[Calls], str]:
    async with server(kubeconfig) as (operator, admin, description, api):
        namespace = "requests-" + uuid.uuid4().hex[:6]
        with api_client(admin) as client:
            workloads = await asyncio.to_thread(set_up, client, namespace, at_once)
        kube = Kube(api_client(operator))
        try:
            return await measure(kube, workloads, calls, api), description
        finally:
            await kube.close()
            if kubeconfig is not None:  # a server of the user's keeps what the run made
                with api_client(admin) as client:
                    await asyncio.to_thread(kubernetes.client.CoreV1Api(client).delete_namespace, namespace)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.requests", description=__doc__.split("\n\n")[1])
    parser.add_argument("--calls", type=int, default=500, help="calls of each kind (default %(default)s)")
    parser.add_argument("--kubeconfig", type=pathlib.Path,
                        help="another API server's (default: the project's control plane, started for the run)")
    parser.add_argument("--at-once", default=f"1,{CONNECTIONS}",
                        help=f"calls in flight, a table each (default %(default)s; {CONNECTIONS}, the operator's limit, "
                             "is what a burst reaches)")
    args = parser.parse_args(argv)
    for at_once in (int(n) for n in args.at_once.split(",")):
        measured, description = asyncio.run(run(args.kubeconfig, args.calls, at_once))
        print(f"{description}; {at_once} call(s) in flight; CPU of this process (user and system)\n")
        print(table(measured) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
