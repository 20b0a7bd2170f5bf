"""python -m benchmarks.server_profile [--write status|finalizer|status-update] [--seconds 15] [--at-once 32] --out FILE

Where kube-apiserver spends its CPU on one kind of the operator's writes of a Workload: on the project's own
control plane (tests/controlplane/build.sh builds it), started for the run, the operator's own client makes that
write over and over, ``--at-once`` Workloads at a time, as the operator makes it (``status``: the conditional
JSON patch of a status; ``finalizer``: the finalizer's JSON patch, on and off), while kube-apiserver's own Go
profiler (``/debug/pprof/profile``, on by default) samples it for ``--seconds``. It writes the profile to FILE
and prints the writes made, kube-apiserver's and etcd's CPU per write over the same span, and the command that
reads the profile (``go tool pprof``, with the kube-apiserver binary that served it).

``status-update``, for comparison, is a write the operator does not make: the same status written as client-go's
controllers write theirs, a PUT of the whole object last read, conditional on its resourceVersion. The operator's
identity makes it too, granted that ``update`` for the run (its role has none).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import pathlib
import sys
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import aiohttp
import orjson

from benchmarks.apis import BenchApi, real_api
from benchmarks.lifecycle import server_cpu
from benchmarks.requests import api_client, finalizer_write, first_status, set_up, status_write
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster import control_plane
from workload_operator.kube import CONNECTIONS, Kube
from workload_operator.lifecycle.decide import WorkloadView
from workload_operator.lifecycle.status import WorkloadStatus

WRITES = ("status", "finalizer", "status-update")
UPDATE_STATUS = {"metadata": {"name": "benchmark-update-workload-status"}, "rules": [
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["update"]}]}


def status_update(kube: Kube, body: dict[str, Any], first: WorkloadStatus, i: int) -> Awaitable[bytes]:
    """``status_write``'s status as an update: the object last read with that status, managedFields left out (the
    server then keeps its own), its resourceVersion the condition."""
    meta = {key: value for key, value in body["metadata"].items() if key != "managedFields"}
    status = first.model_copy(update={"message": f"{i}"}).model_dump(mode="json", by_alias=True, exclude_none=True)
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/{PLURAL}/{meta['name']}/status"
    return kube.custom.http.request("PUT", path, {**body, "metadata": meta, "status": status})


async def profile(api: BenchApi, seconds: int) -> bytes:
    """kube-apiserver's CPU profile over the next ``seconds`` (pprof's protobuf, gzipped)."""
    timeout = aiohttp.ClientTimeout(total=seconds + 60)
    async with aiohttp.ClientSession(headers=api.headers, connector=aiohttp.TCPConnector(ssl=api.ssl)) as session:
        async with session.get(f"{api.url}/debug/pprof/profile", params={"seconds": str(seconds)},
                               timeout=timeout) as response:
            response.raise_for_status()
            return await response.read()


async def run(write: str, seconds: int, at_once: int) -> tuple[bytes, int, float]:
    """(the profile, the writes made while it was taken, kube-apiserver's and etcd's CPU seconds meanwhile)."""
    async with real_api() as api:
        assert api.plane is not None
        with api_client(api.plane.kubeconfig) as admin:
            workloads = await asyncio.to_thread(set_up, admin, "profile-" + uuid.uuid4().hex[:6], at_once)
            if write == "status-update":
                await asyncio.to_thread(control_plane.grant, admin, UPDATE_STATUS)
        kube = Kube(api_client(api.kubeconfig))
        try:
            bodies = [await kube.add_finalizer(WorkloadView.from_body(w)) for w in workloads]
            views = [WorkloadView.from_body(body) for body in bodies]
            now = datetime.datetime.now(datetime.UTC)
            writes, profiling = 0, True

            async def chain(w: int) -> None:  # one Workload's writes, each waiting for the one before it
                nonlocal writes
                first, i = first_status(views[w], now), 0
                while profiling:
                    i += 1  # from 1: the finalizer is on, so its first write takes it off
                    if write == "status":
                        answer = await status_write(kube, views[w], first, i)
                    elif write == "status-update":
                        answer = orjson.loads(await status_update(kube, bodies[w], first, i))
                    else:
                        answer = await finalizer_write(kube, views[w], i)
                    bodies[w], views[w] = answer, WorkloadView.from_body(answer)
                    writes += 1

            chains = [asyncio.create_task(chain(w)) for w in range(len(views))]
            await asyncio.sleep(1)  # under way before the profile starts
            before, counted, started = server_cpu(api) or 0.0, writes, time.monotonic()
            taken = await profile(api, seconds)
            spent, made = (server_cpu(api) or 0.0) - before, writes - counted
            profiling = False
            await asyncio.gather(*chains)
            print(f"{made} writes in {time.monotonic() - started:.1f} s", file=sys.stderr)
            return taken, made, spent
        finally:
            await kube.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server_profile", description=__doc__.split("\n\n")[1])
    parser.add_argument("--write", choices=WRITES, default="status", help="the write to make (default %(default)s)")
    parser.add_argument("--seconds", type=int, default=15, help="how long to profile (default %(default)s)")
    parser.add_argument("--at-once", type=int, default=CONNECTIONS,
                        help="Workloads written at a time (default %(default)s, the operator's limit on requests)")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="where to write the profile")
    args = parser.parse_args(argv)
    if control_plane.binaries() is None:
        parser.error("no control plane's binaries: run tests/controlplane/build.sh (or set KUBEBUILDER_ASSETS)")
    taken, made, spent = asyncio.run(run(args.write, args.seconds, args.at_once))
    args.out.write_bytes(taken)
    found = control_plane.binaries()
    binary = found.apiserver if found is not None else "kube-apiserver"
    print(f"{made} {args.write} writes, {args.at_once} at a time, in {args.seconds} s of kube-apiserver's profile; "
          f"kube-apiserver and etcd: {spent / max(made, 1) * 1e3:.2f} ms of CPU per write\n"
          f"read it: go tool pprof -top -cum {binary} {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
