"""python -m benchmarks.lifecycle [--sizes 100,1000,5000] [--unrelated-pods 5000]

Drives N batch workloads through a full lifecycle on the emulated API, with the operator as its own
process and a simulated kubelet, and prints a table per N:

- status writes and other operator requests per transition (from the API's request log; watches and
  the initial lists are not counted);
- latency from a pod status write to the Workload state change it causes, seen on a watch (p50, p99),
  next to the bare round trip measured in the same run (one PATCH and its watch event, no operator);
- throughput (transitions/s), the operator's CPU seconds and peak RSS;
- one more run of the smallest size with unrelated pods in the namespace: the operator's CPU and
  memory should not grow with them (it selects its pods on the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kmock
import yaml

from workload_operator import GROUP, PLURAL, VERSION, crd
from workload_operator.devcluster.control_plane import write_kubeconfig
from workload_operator.devcluster.emulator import KubeAPIServer

NAMESPACE = "bench"
OPERATOR_AGENTS = ("workload-operator/", "kopf/")
MERGE = {"Content-Type": "application/merge-patch+json"}
TRANSITIONS_PER_BATCH = 5  # queued, preparing, running, collecting, completed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Run:
    size: int
    unrelated: int = 0
    one_at_a_time: bool = False
    latencies: list[float] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)
    seconds: float = 0.0
    transitions: int = 0
    status_writes: int = 0
    other_requests: int = 0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0


class Driver:
    """The test side: creates workloads, plays the kubelet, and times what the operator does."""

    def __init__(self, api: KubeAPIServer, session: aiohttp.ClientSession) -> None:
        self.base = str(api.url).rstrip("/")
        self.session = session
        self.wl_url = f"{self.base}/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
        self.pods_url = f"{self.base}/api/v1/namespaces/{NAMESPACE}/pods"
        self.pending_write: dict[str, float] = {}     # workload -> when its pod's status was written
        self.state: dict[str, str] = {}
        self.reached: dict[tuple[str, str], asyncio.Event] = {}   # (workload, state) -> set when seen
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.expected = 0

    async def post(self, url: str, body: dict[str, Any]) -> None:
        async with self.session.post(url, json=body) as response:
            assert response.status < 300, await response.text()

    async def pod_status(self, pod: str, status: dict[str, Any]) -> None:
        async with self.session.patch(f"{self.pods_url}/{pod}/status", data=json.dumps({"status": status}),
                                      headers=MERGE) as response:
            assert response.status < 300, await response.text()

    async def stream(self, url: str, handle: Any) -> None:
        async with self.session.get(url, params={"watch": "true"}, timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for line in response.content:
                if line.strip():
                    await handle(json.loads(line))

    async def on_workload(self, event: dict[str, Any]) -> None:
        obj = event["object"]
        name, state = obj["metadata"]["name"], (obj.get("status") or {}).get("state")
        if state and state != self.state.get(name):
            self.state[name] = state
            self.event(name, state).set()
            if (written := self.pending_write.pop(name, None)) is not None and state in ("running", "collecting"):
                self.latencies.append(time.perf_counter() - written)
            if state == "completed" and sum(s == "completed" for s in self.state.values()) == self.expected:
                self.done.set()

    def event(self, workload: str, state: str) -> asyncio.Event:
        return self.reached.setdefault((workload, state), asyncio.Event())

    async def on_pod(self, event: dict[str, Any]) -> None:
        """The simulated kubelet: a new pod runs at once, and exits 0 once the operator has seen it run."""
        pod = event["object"]
        if event["type"] != "ADDED":
            return
        name, workload = pod["metadata"]["name"], pod["metadata"]["labels"][f"{GROUP}/workload"]
        asyncio.create_task(self.play(name, workload))

    async def play(self, pod: str, workload: str) -> None:
        main = {"name": "main", "image": "busybox", "imageID": "", "ready": True, "restartCount": 0}
        await self.event(workload, "preparing").wait()
        self.pending_write[workload] = time.perf_counter()
        await self.pod_status(pod, {"phase": "Running", "containerStatuses": [
            {**main, "state": {"running": {"startedAt": "2026-11-23T12:00:00Z"}}}]})
        await self.event(workload, "running").wait()
        self.pending_write[workload] = time.perf_counter()
        await self.pod_status(pod, {"phase": "Succeeded", "containerStatuses": [{**main, "ready": False, "state": {
            "terminated": {"exitCode": 0, "reason": "Completed", "message": "{}", "startedAt": "2026-11-23T12:00:00Z",
                           "finishedAt": "2026-11-23T12:00:01Z"}}}]})


async def bare_round_trips(driver: Driver, samples: int) -> list[float]:
    """One status PATCH and its watch event, without the operator: the floor for any reaction."""
    url = driver.wl_url  # a Workload's status, written before the operator starts (and deleted after)
    await driver.post(url, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload", "metadata": {"name": "probe"},
                            "spec": {"image": "busybox"}})
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def on_event(event: dict[str, Any]) -> None:
        await seen.put((event["object"].get("status") or {}).get("message", ""))

    watcher = asyncio.create_task(driver.stream(f"{url}?fieldSelector=metadata.name%3Dprobe", on_event))
    await seen.get()  # the initial ADDED
    times = []
    for n in range(1, samples + 1):
        start = time.perf_counter()
        async with driver.session.patch(f"{url}/probe/status", data=json.dumps({"status": {"message": str(n)}}),
                                        headers=MERGE) as r:
            assert r.status < 300
        while await seen.get() != str(n):
            pass
        times.append(time.perf_counter() - start)
    watcher.cancel()
    async with driver.session.delete(f"{url}/probe") as r:
        assert r.status < 300
    return times


async def operator_watching(api: KubeAPIServer, timeout: float = 30) -> None:
    """Until the operator watches Workloads and pods (it has started), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watched = {api.route(r.url.path).plural for r in api.requests_since(0)  # type: ignore[union-attr]
                   if r.headers.get("User-Agent", "").startswith("kopf/") and r.params.get("watch") == "true"}
        if {PLURAL, "pods"} <= watched:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the operator did not start watching within 30 s")


def process_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of a live process, from /proc."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(stat[11]) + int(stat[12])) / ticks
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return cpu, int(line.split()[1]) / 1024
    return cpu, float("nan")


async def one_run(size: int, unrelated: int, timeout: float, one_at_a_time: bool = False) -> Run:
    run = Run(size=size, unrelated=unrelated, one_at_a_time=one_at_a_time)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="workload-bench-"))
    async with KubeAPIServer() as api, kmock.Server(api), aiohttp.ClientSession() as session:
        api.register_crd(yaml.safe_load(crd.render()))
        kubeconfig = write_kubeconfig(folder / "kubeconfig", str(api.url).rstrip("/"), "bench")
        driver = Driver(api, session)
        await driver.post(f"{driver.base}/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        await asyncio.gather(*(driver.post(driver.pods_url, {"metadata": {"name": f"other-{i}", "labels": {"app": "x"}},
                                                             "spec": {"containers": [{"name": "c", "image": "x"}]}})
                               for i in range(unrelated)))
        run.round_trips = await bare_round_trips(driver, 200)
        operator = subprocess.Popen(
            [sys.executable, "-m", "workload_operator", "run", "--namespace", NAMESPACE, "--liveness", "off",
             "--metrics-port", "0"], env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        watches = [asyncio.create_task(driver.stream(driver.wl_url, driver.on_workload)),
                   asyncio.create_task(driver.stream(f"{driver.pods_url}?labelSelector=app.kubernetes.io%2Fmanaged-by%3D"
                                                     "workload-operator", driver.on_pod))]
        try:
            await operator_watching(api)
            first = len(api.requests_since(0))
            driver.expected = size
            started = time.perf_counter()
            for i in range(size):
                await driver.post(driver.wl_url, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload",
                                                  "metadata": {"name": f"w{i}"}, "spec": {"image": "busybox"}})
                if one_at_a_time:  # no load: the operator's reaction alone
                    await driver.event(f"w{i}", "completed").wait()
            await asyncio.wait_for(driver.done.wait(), timeout)
            run.seconds = time.perf_counter() - started
            run.cpu_seconds, run.peak_rss_mb = process_usage(operator.pid)
        finally:
            operator.terminate()
            await asyncio.to_thread(operator.wait, 30)  # the API it says goodbye to runs in this loop
            for task in watches:
                task.cancel()
            await api.close_watches()
        run.latencies = driver.latencies
        run.transitions = size * TRANSITIONS_PER_BATCH
        for request in api.requests_since(first):
            route = api.route(request.url.path)
            if not request.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS) or route is None:
                continue  # the driver's own, or discovery
            if request.method == "GET" and route.name is None:
                continue  # watches (and lists after a dropped watch)
            if request.method == "PATCH" and route.subresource == "status":
                run.status_writes += 1
            else:
                run.other_requests += 1
    return run


def table(runs: list[Run]) -> str:
    head = ("| workloads | unrelated pods | status writes / transition | other requests / transition | "
            "latency p50 / p99 (ms) | bare round trip p50 / p99 (ms) | ratio p50 | transitions/s | "
            "operator CPU (s) | operator peak RSS (MB) |")
    lines = [head, "|" + " --- |" * 10]
    for r in runs:
        p50, p99 = percentile(r.latencies, 0.5) * 1000, percentile(r.latencies, 0.99) * 1000
        b50, b99 = percentile(r.round_trips, 0.5) * 1000, percentile(r.round_trips, 0.99) * 1000
        size = f"{r.size} one at a time" if r.one_at_a_time else f"{r.size} at once"
        lines.append(f"| {size} | {r.unrelated} | {r.status_writes / r.transitions:.2f} | "
                     f"{r.other_requests / r.transitions:.2f} | {p50:.1f} / {p99:.1f} | {b50:.1f} / {b99:.1f} | "
                     f"{p50 / b50:.1f} | {r.transitions / r.seconds:.0f} | {r.cpu_seconds:.1f} | {r.peak_rss_mb:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lifecycle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="workload counts to sweep (default %(default)s)")
    parser.add_argument("--unrelated-pods", type=int, default=5000, help="for the extra run (default %(default)s; 0: skip)")
    parser.add_argument("--one-at-a-time", type=int, default=50, metavar="N",
                        help="first, N workloads one after another: the reaction without load (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one run may take (default %(default)s)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = [asyncio.run(one_run(args.one_at_a_time, 0, args.timeout, one_at_a_time=True))] if args.one_at_a_time else []
    runs += [asyncio.run(one_run(size, 0, args.timeout)) for size in sizes]
    if args.unrelated_pods:
        runs.append(asyncio.run(one_run(sizes[0], args.unrelated_pods, args.timeout)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"emulated API (kmock) in the driver's process, operator in its own process")
    print(f"command: python -m benchmarks.lifecycle --sizes {args.sizes} --unrelated-pods {args.unrelated_pods} "
          f"--one-at-a-time {args.one_at_a_time}\n")
    print(table(runs))


if __name__ == "__main__":
    main()
