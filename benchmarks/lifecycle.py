"""python -m benchmarks.lifecycle [--sizes 100,1000,5000] [--replicas 8] [--kubeconfig PATH | --real] [--profile DIR]
                                [--modes batch,service,worker-loss,gang,kopf-floor,watch-floor,job-controller]
                                [--running K]

Drives N workloads at once through a whole lifecycle, with the operator as its own process and this
driver playing the users and the kubelet, and prints a table with a row per mode and N:

- status writes and other operator requests per transition and per pod, from the API's request log
  (watches and the lists that open them are not counted), and which requests the others are;
- latency from a write that should move a Workload (a pod's status, a cancel, a pod deleted) to the
  state change it causes, seen on a watch (p50, p99), next to the bare round trip measured in the same
  run (one status PATCH and its watch event, no operator) and their ratio;
- throughput (transitions/s), the operator's CPU seconds and peak RSS, and how they grow with N;
- first, batch workloads one at a time (the reaction without load); last, the first of the sizes again
  (batch) with unrelated pods in the namespace (the operator's CPU and memory should not grow with them).

The modes: ``batch`` (queued → preparing → running → collecting → completed), ``service`` (… running →
serving, then cancelled: stopping → completed) and ``worker-loss`` (the first pod is deleted while
running: orphaned → queued, and a second attempt completes; the operator's backoff is set to 0 so that
the run measures the operator, not the wait) and ``gang`` (batch workloads of ``--replicas`` pods each: every
pod Running, then every pod Succeeded; the same path as batch, and still one status write per transition),
and two floors, not the operator: ``kopf-floor`` (kopf alone, set up as the operator sets it up, with handlers
that do nothing) and ``watch-floor`` (the same two watches read with aiohttp, no kopf), while this driver makes
a batch lifecycle's operator writes itself: the CPU and memory of those rows are what the same watch events cost
kopf, and what receiving them costs at all.

``job-controller`` (with ``--real``) is Kubernetes' own Job controller (``kube-controller-manager
--controllers=job-controller``, its own process and service account) given the same work by the same driver: a
Job of one pod, Running then Succeeded; the side-by-side table sets it beside the batch row of the same size.

By default the API is kmock's emulator in this process. With ``--real`` it is the project's own control plane
(etcd and kube-apiserver built by tests/controlplane/build.sh), started for each run and thrown away after it:
every client talks to kube-apiserver directly, requests are read from its audit log, the operator runs as the
RBAC-only user of deploy/clusterrole.yaml, and its TCP connections are counted by sampling its sockets.
With ``--kubeconfig`` it is a real API server
(for example kube-apiserver and etcd alone, as the cluster tests use): the run installs the CRD if it is
missing, uses a new namespace per run and removes what it created (without a controller-manager, the
namespaces stay Terminating, empty). There must be no kubelet that would
run the pods (this driver writes their status) and no other operator serving that namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.apis import BenchApi, api_for
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster.emulator import OPERATOR_AGENTS, parse_resource_path
from workload_operator.lifecycle.decide import FINALIZER, WorkloadView
from workload_operator.lifecycle.gang import attempt_pod_names
from workload_operator.lifecycle.status import WorkloadStatus, apply_transition
from workload_operator.manifests import POD_SELECTOR, RETIRED_LABEL, WORKLOAD_LABEL, pod_manifest

MERGE = {"Content-Type": "application/merge-patch+json"}
JOB_LABEL = "benchmark=job-controller"  # on the benchmark's Jobs' pods, for the driver's watch of them
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
FINAL = ("completed", "failed", "cancelled")
SERVICE_SPEC = {"type": "service", "port": 8000, "readinessPath": "/health"}
PATHS = {  # mode -> the states every workload goes through, in order
    "batch": ("queued", "preparing", "running", "collecting", "completed"),
    "service": ("queued", "preparing", "running", "serving", "stopping", "completed"),
    "worker-loss": ("queued", "preparing", "running", "orphaned", "queued", "preparing", "running", "collecting",
                    "completed"),
    "gang": ("queued", "preparing", "running", "collecting", "completed"),  # spec.replicas pods, one lifecycle
    # kopf alone, and the bare watches (benchmarks/kopf_floor.py): the driver makes a batch lifecycle's writes itself
    "kopf-floor": ("queued", "preparing", "running", "collecting", "completed"),
    "watch-floor": ("queued", "preparing", "running", "collecting", "completed"),
    # Kubernetes' own Job controller (--real only), the same pod played the same way: a Job, not a Workload
    "job-controller": ("active", "completed"),
}
FLOORS = {"kopf-floor": [], "watch-floor": ["--watch-only"]}  # mode -> benchmarks.kopf_floor's options
JOB_CONTROLLER = "job-controller"
JOB_CONTROLLER_OPTIONS = ("--kube-api-qps=10000", "--kube-api-burst=10000")
# Who the process under test is, by the User-Agent of its requests: the operator (its client, and kopf's watches),
# or kube-controller-manager (the Job controller's requests carry it, whatever service account they run as).
SUBJECT_AGENTS = {JOB_CONTROLLER: ("kube-controller-manager/",)}


def is_subject(request: Any, mode: str) -> bool:
    return bool(request.agent.startswith(SUBJECT_AGENTS.get(mode, OPERATOR_AGENTS)))

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MAIN = {"name": "main", "image": "busybox", "imageID": "", "restartCount": 0}
STARTED = "2026-11-23T12:00:00Z"
RUNNING = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
           "containerStatuses": [{**MAIN, "ready": False, "state": {"running": {"startedAt": STARTED}}}]}
SERVING = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
           "containerStatuses": [{**MAIN, "ready": True, "state": {"running": {"startedAt": STARTED}}}]}
SUCCEEDED = {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}],
             "containerStatuses": [{**MAIN, "ready": False, "state": {"terminated": {
                 "exitCode": 0, "reason": "Completed", "message": "{}", "startedAt": STARTED,
                 "finishedAt": "2026-11-23T12:00:01Z"}}}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclass
class Run:
    mode: str
    size: int
    unrelated: int = 0
    one_at_a_time: bool = False
    replicas: int = 1  # pods per attempt (spec.replicas): more than 1 in gang mode only
    baseline: bool = False  # the operator of --baseline, not this checkout's
    latencies: list[float] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)
    seconds: float = 0.0
    transitions: int = 0
    status_writes: int = 0
    others: collections.Counter[str] = field(default_factory=collections.Counter)
    pods: int = 0  # the operator's pods, every attempt's
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    stop_seconds: float = 0.0
    connections: int = 0  # distinct TCP connections the operator opened to the API (watches included)
    held_kb: float = 0.0  # RSS per Workload of an operator restarted with the N finished Workloads (and any left
    # running, counted in), over an idle one's
    after_burst_kb: float = 0.0  # the same, of the operator that ran them, once they had all finished and it settled
    restart_writes: int = 0  # requests the restarted operator sent, watches and their lists excepted: 0 expected
    restart_cpu: float = 0.0  # CPU seconds the restarted operator took to list the N Workloads and their pods, and settle
    restart_rss_mb: float = 0.0  # the restarted operator's whole RSS once settled (what a memory limit sees)
    running: int = 0  # Workloads left running beside the N finished ones when the operator restarted (--running)
    finish_latencies: list[float] = field(default_factory=list)  # last pod Succeeded -> finished (batch, job-controller)
    # CPU seconds kube-apiserver and etcd took during the burst (the driver's requests too, the same in every mode),
    # on the control plane the run started; None on any other API.
    server_cpu_seconds: float | None = None

    @property
    def label(self) -> str:
        size = f"{self.size} × {self.replicas} pods" if self.replicas > 1 else f"{self.size}"
        label = f"{size} one at a time" if self.one_at_a_time else f"{size} at once"
        return label + (f", {self.unrelated} unrelated pods" if self.unrelated else "") + (
            " (baseline)" if self.baseline else "")


class Driver:
    """The test side: creates workloads, plays the kubelet and the users, and times what the operator does."""

    def __init__(self, base: str, namespace: str, session: aiohttp.ClientSession, replicas: int = 1) -> None:
        self.base, self.namespace, self.session, self.replicas = base, namespace, session, replicas
        self.workloads_url = f"{base}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        self.pods_url = f"{base}/api/v1/namespaces/{namespace}/pods"
        self.seen: collections.defaultdict[str, list[str]] = collections.defaultdict(list)  # states in order
        self.counted: dict[str, int] = {}              # workload -> status.transitions, as last seen
        self.pods: set[str] = set()                    # pods of the operator seen created
        self.pending: dict[str, tuple[str, float]] = {}  # workload -> (the state a write should cause, when)
        self.latencies: list[float] = []
        self.finished: dict[str, float] = {}           # workload -> when its last pod's Succeeded was written
        self.finish_latencies: list[float] = []        # from then until the watch shows it finished
        self.jobs_url = f"{base}/apis/batch/v1/namespaces/{namespace}/jobs"
        self.job_pods: dict[str, str] = {}             # Job (or Workload) -> its first pod seen
        self._waiters: dict[str, asyncio.Event] = {}

    # --- requests ------------------------------------------------------------------------------
    async def call(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
                   ok: tuple[int, ...] = ()) -> None:
        data = json.dumps(body) if body is not None else None
        async with self.session.request(method, url, data=data, headers=headers or {
                "Content-Type": "application/json"}) as response:
            if response.status >= 300 and response.status not in ok:
                raise RuntimeError(f"{method} {url}: {response.status} {await response.text()}")

    async def stream(self, url: str, handle: Callable[[dict[str, Any]], None]) -> None:
        """List, then watch from the list's resourceVersion until cancelled: no change in between is missed,
        however late the watch opens. A stream the server ends (a real one does, after a while) is resumed."""
        async with self.session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"the list of {url} failed: {response.status} {await response.text()}")
            listing = await response.json()
        for item in listing["items"]:
            handle({"type": "ADDED", "object": item})
        version = listing["metadata"]["resourceVersion"]
        while True:
            params = {"watch": "true", "resourceVersion": version}
            async with self.session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=None)) as response:
                if response.status != 200:
                    raise RuntimeError(f"the watch of {url} failed: {response.status} {await response.text()}")
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event["type"] == "ERROR":  # 410 Gone: too far behind to resume; the run cannot go on
                        raise RuntimeError(f"the watch of {url} failed: {event['object'].get('message')}")
                    version = event["object"]["metadata"]["resourceVersion"]
                    handle(event)

    async def watch(self, api: BenchApi, timeout: float = 30, jobs: bool = False) -> list[asyncio.Task[None]]:
        """Watch the run's Workloads and the operator's pods (``jobs``: the Jobs and their pods); return once the
        API has both watch requests."""
        selector = (JOB_LABEL if jobs else POD_SELECTOR).replace("/", "%2F").replace("=", "%3D")
        start = len(api.log(0))
        objects = self.jobs_url if jobs else self.workloads_url
        watches = [asyncio.create_task(self.stream(objects, self.on_job if jobs else self.on_workload)),
                   asyncio.create_task(self.stream(f"{self.pods_url}?labelSelector={selector}", self.on_pod))]
        wanted = {objects.removeprefix(self.base), self.pods_url.removeprefix(self.base)}
        deadline = time.monotonic() + timeout
        while not wanted <= {r.path for r in api.log(start) if r.watch}:
            if time.monotonic() > deadline or any(w.done() for w in watches):
                for w in watches:
                    w.cancel()
                raise RuntimeError(f"the driver's watches did not open within {timeout:.0f} s")
            await asyncio.sleep(0.05)
        return watches

    # --- what the watches show ----------------------------------------------------------------
    def on_workload(self, event: dict[str, Any]) -> None:
        obj = event["object"]
        name, status = obj["metadata"]["name"], obj.get("status") or {}
        state = status.get("state")
        self.counted[name] = status.get("transitions", 0)
        self.seen_state(name, state)

    def seen_state(self, name: str, state: str | None) -> None:
        if state and (not self.seen[name] or self.seen[name][-1] != state):
            self.seen[name].append(state)
            if (pending := self.pending.get(name)) is not None and pending[0] == state:
                self.latencies.append(time.perf_counter() - pending[1])
                del self.pending[name]
            if state in FINAL and (since := self.finished.pop(name, None)) is not None:
                self.finish_latencies.append(time.perf_counter() - since)
            self._notify(name)

    def on_job(self, event: dict[str, Any]) -> None:
        """A Job's states, as its status shows them: ``active`` once it counts a pod, ``completed`` once Complete."""
        obj = event["object"]
        name, status = obj["metadata"]["name"], obj.get("status") or {}
        done = any(c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions") or [])
        state = "completed" if done else "active" if status.get("active") else None
        self.seen_state(name, state)
        self.counted[name] = len(self.seen[name])

    def on_pod(self, event: dict[str, Any]) -> None:
        if event["type"] == "ADDED":
            labels = event["object"]["metadata"]["labels"]
            owner = labels[WORKLOAD_LABEL] if WORKLOAD_LABEL in labels else labels[JOB_NAME_LABEL]
            self.pods.add(event["object"]["metadata"]["name"])
            self.job_pods.setdefault(owner, event["object"]["metadata"]["name"])
            self._notify(owner)

    def _notify(self, workload: str) -> None:
        if (waiter := self._waiters.pop(workload, None)) is not None:
            waiter.set()

    async def until(self, workload: str, check: Callable[[], bool]) -> None:
        while not check():
            await self._waiters.setdefault(workload, asyncio.Event()).wait()

    async def reach(self, workload: str, state: str, times: int = 1) -> None:
        await self.until(workload, lambda: self.seen[workload].count(state) >= times)

    async def attempt_pods(self, workload: str, attempt: int) -> tuple[str, ...]:
        """Once the operator has created them all: the attempt's pods, by index (one, but for a gang)."""
        names = attempt_pod_names(workload, attempt, self.replicas)
        await self.until(workload, lambda: self.pods.issuperset(names))
        return names

    # --- what the users and the kubelet do ----------------------------------------------------
    async def create(self, workload: str, mode: str) -> None:
        spec = {"image": "busybox", **(SERVICE_SPEC if mode == "service" else {}),
                **({"replicas": self.replicas} if mode == "gang" else {})}
        await self.call("POST", self.workloads_url, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload",
                                                     "metadata": {"name": workload}, "spec": spec})

    async def cause(self, workload: str, state: str, write: Coroutine[Any, Any, None]) -> None:
        """Make a write that should move the workload to ``state``, timing it until the watch shows that."""
        self.pending[workload] = (state, time.perf_counter())
        await write

    def pod_status(self, pod: str, status: dict[str, Any]) -> Coroutine[Any, Any, None]:
        return self.call("PATCH", f"{self.pods_url}/{pod}/status", {"status": status}, MERGE)

    async def to_all(self, workload: str, pods: tuple[str, ...], state: str, status: dict[str, Any]) -> None:
        """Every pod of the attempt to ``status``; the last pod's write is the one that should move the workload
        to ``state`` (a gang moves once all of its pods have): it is timed, once the others' are done."""
        await asyncio.gather(*(self.pod_status(pod, status) for pod in pods[:-1]))
        await self.cause(workload, state, self.pod_status(pods[-1], status))

    async def run_pods(self, workload: str, attempt: int, status: dict[str, Any]) -> tuple[str, ...]:
        pods = await self.attempt_pods(workload, attempt)
        await self.reach(workload, "preparing", times=attempt)
        await self.to_all(workload, pods, "running", status)
        await self.reach(workload, "running", times=attempt)
        return pods

    async def batch(self, workload: str) -> None:
        """A batch workload, or a gang of them: each pod Running, then each Succeeded (exit 0)."""
        pods = await self.run_pods(workload, 1, RUNNING)
        self.finished[workload] = time.perf_counter()
        await self.to_all(workload, pods, "collecting", SUCCEEDED)

    async def job(self, name: str) -> None:
        """Kubernetes' Job controller, given the same work: a Job of one pod (the same container, restartPolicy
        Never, no retry); its pod Running, then Succeeded, played as for a Workload's."""
        await self.call("POST", self.jobs_url, {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"labels": {JOB_LABEL.split("=")[0]: JOB_LABEL.split("=")[1]}},
                "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                         "containers": [{"name": "main", "image": "busybox",
                                         "terminationMessagePolicy": "FallbackToLogsOnError"}]}}}})
        await self.until(name, lambda: name in self.job_pods)
        pod = self.job_pods[name]
        await self.reach(name, "active")
        await self.pod_status(pod, RUNNING)
        self.finished[name] = time.perf_counter()
        await self.cause(name, "completed", self.pod_status(pod, SUCCEEDED))

    async def service(self, workload: str) -> None:
        await self.run_pods(workload, 1, SERVING)
        await self.reach(workload, "serving")
        await self.cause(workload, "stopping", self.call("PATCH", f"{self.workloads_url}/{workload}",
                                                        {"spec": {"cancel": True}}, MERGE))

    async def worker_loss(self, workload: str) -> None:
        (lost,) = await self.run_pods(workload, 1, RUNNING)
        await self.cause(workload, "orphaned", self.call("DELETE", f"{self.pods_url}/{lost}"))
        (pod,) = await self.run_pods(workload, 2, RUNNING)
        await self.cause(workload, "collecting", self.pod_status(pod, SUCCEEDED))

    async def as_operator(self, workload: str) -> None:
        """The floors: the writes the operator makes for a batch lifecycle (finalizer, pod, five statuses built by
        its core, the finished pod retired), with the kubelet's, in the same order; kopf alone, or bare watches,
        see them and do nothing."""
        url, pod = f"{self.workloads_url}/{workload}", f"{workload}-1"
        async with self.session.get(url) as response:
            view = WorkloadView.from_body(await response.json())
        status, now = WorkloadStatus(), datetime.datetime.now(datetime.UTC)

        async def transition(state: str, **update: Any) -> None:
            nonlocal status
            status = apply_transition(status, state, reason="Floor", now=now).model_copy(update=update)
            await self.call("PATCH", f"{url}/status", [
                {"op": "test", "path": "/metadata/uid", "value": view.uid},
                {"op": "add", "path": "/status", "value": status.model_dump(mode="json", by_alias=True,
                                                                            exclude_none=True)}], JSON_PATCH)

        await self.call("PATCH", url, [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}],
                        JSON_PATCH)
        await transition("queued")
        await self.call("POST", self.pods_url, pod_manifest(view, view.spec, 1))
        await transition("preparing", attempts=1)
        await self.pod_status(pod, RUNNING)
        await transition("running")
        await self.pod_status(pod, SUCCEEDED)
        await transition("collecting")
        await transition("completed")
        await self.call("PATCH", f"{self.pods_url}/{pod}", [  # retired: out of the operator's watch
            {"op": "add", "path": f"/metadata/labels/{RETIRED_LABEL.replace('/', '~1')}", "value": "true"}], JSON_PATCH)

    async def keep_running(self, workload: str, mode: str) -> None:
        """A Workload (batch or gang) played up to running, and left there."""
        await self.create(workload, mode)
        await self.run_pods(workload, 1, RUNNING)

    async def lifecycle(self, workload: str, mode: str) -> None:
        if mode == JOB_CONTROLLER:
            await self.job(workload)
            await self.reach(workload, "completed")
            return
        await self.create(workload, mode)
        await {"batch": self.batch, "service": self.service, "worker-loss": self.worker_loss,
               "gang": self.batch, "kopf-floor": self.as_operator, "watch-floor": self.as_operator}[mode](workload)
        await self.reach(workload, "completed")
        if tuple(self.seen[workload]) != PATHS[mode]:
            raise RuntimeError(f"{workload} went {' → '.join(self.seen[workload])}, not {' → '.join(PATHS[mode])}")


async def unless_something_fails(work: asyncio.Future[Any], watches: list[asyncio.Task[None]],
                                 exited: asyncio.Future[int]) -> None:
    """Wait for ``work``, unless a watch of the driver fails or the operator exits: the work would wait forever."""
    done, _ = await asyncio.wait({work, *watches, exited}, return_when=asyncio.FIRST_COMPLETED)
    if work not in done:  # cancelled, and its outcome taken, so that asyncio does not report it as lost
        work.add_done_callback(lambda future: future.cancelled() or future.exception())
        work.cancel()
    if exited in done:
        raise RuntimeError(f"the operator exited with code {exited.result()}")
    for task in done:
        task.result()
    if work not in done:
        raise RuntimeError("a watch of the driver ended")


async def bare_round_trips(driver: Driver, samples: int) -> list[float]:
    """One status PATCH and its watch event, without the operator: the floor for any reaction."""
    url, name = driver.workloads_url, "probe"
    await driver.call("POST", url, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload", "metadata": {"name": name},
                                    "spec": {"image": "busybox"}})
    seen: asyncio.Queue[str] = asyncio.Queue()
    watcher = asyncio.create_task(driver.stream(
        f"{url}?fieldSelector=metadata.name%3D{name}",
        lambda event: seen.put_nowait((event["object"].get("status") or {}).get("message", ""))))
    await seen.get()  # the probe, as listed
    times = []
    for n in range(1, samples + 1):
        start = time.perf_counter()
        await driver.call("PATCH", f"{url}/{name}/status", {"status": {"message": str(n)}}, MERGE)
        while await seen.get() != str(n):
            pass
        times.append(time.perf_counter() - start)
    watcher.cancel()
    await driver.call("DELETE", f"{url}/{name}")
    return times


async def operator_watching(api: BenchApi, timeout: float = 60, since: int = 0, mode: str = "batch") -> None:
    """Until the operator watches Workloads and pods (the Job controller: Jobs and pods), having started: watches
    from log index ``since`` on; or fail."""
    deadline = time.monotonic() + timeout
    wanted = {"jobs" if mode == JOB_CONTROLLER else PLURAL, "pods"}
    while time.monotonic() < deadline:
        watched = {route.plural for r in api.log(since) if is_subject(r, mode) and r.watch
                   and (route := parse_resource_path(r.path)) is not None}
        if wanted <= watched:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the operator did not start watching within {timeout:.0f} s")


def process_usage(pid: int, memory: str = "VmHWM") -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of a live process, from /proc; ``memory="VmRSS"``: its RSS now."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    fields = dict(line.split(":", 1) for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines())
    return cpu, int(fields[memory].split()[0]) / 1024


SERVERS = ("kube-apiserver", "etcd")


def server_cpu(api: BenchApi) -> float | None:
    """CPU seconds kube-apiserver and etcd have taken so far, on the control plane the run started (None elsewhere:
    the emulator runs in this process, and a server of the user's is not ours to read)."""
    if api.plane is None:
        return None
    return sum(process_usage(p.pid)[0] for p in api.plane.processes
               if pathlib.Path(str(p.args[0])).name in SERVERS and p.poll() is None)


async def settled(api: BenchApi, pid: int, for_seconds: float = 2.0, timeout: float = 300, mode: str = "batch") -> None:
    """Until the operator has sent no request and used under 5% of a core for ``for_seconds``. When the driver
    has seen the last workload complete, the operator may still be working through the watch events queued
    behind it (and the Event of the last transition is sent after the status write the driver saw)."""
    deadline = time.monotonic() + timeout
    seen, last_busy, cpu = len(api.log(0)), time.monotonic(), process_usage(pid)[0]
    while time.monotonic() - last_busy < for_seconds and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        new, now_cpu = api.log(seen), process_usage(pid)[0]
        seen += len(new)
        if any(is_subject(r, mode) for r in new) or now_cpu - cpu > 0.05 * 0.5:
            last_busy = time.monotonic()
        cpu = now_cpu


def count_requests(run: Run, api: BenchApi, first: int) -> None:
    """The operator's requests from index ``first`` of the API's log on, but for watches and lists; and the
    TCP connections it used from its start (each request's client address and port, as the API saw it; an
    audit log has no ports: there the sampler of the process's sockets counted them)."""
    if not run.connections:
        run.connections = len({r.peer for r in api.log(0) if is_subject(r, run.mode) and r.peer})
    for request in api.log(first):
        route = parse_resource_path(request.path)
        if not is_subject(request, run.mode) or route is None:
            continue  # the driver's own, or discovery
        if request.method == "GET" and route.name is None:
            continue  # watches, and the lists that open them
        if request.method in ("PATCH", "PUT") and route.subresource == "status" and route.plural in (PLURAL, "jobs"):
            run.status_writes += 1
        else:
            run.others[f"{request.method} {route.plural}{'/' + route.subresource if route.subresource else ''}"] += 1


class Connections:
    """The TCP connections a process opens to the API server's port, seen by sampling its sockets every 20 ms
    (/proc/PID/fd and /proc/net/tcp): a connection that lives shorter than that may be missed."""

    def __init__(self, pid: int, port: int) -> None:
        self.pid, self.port, self.seen = pid, port, set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        remote = f":{self.port:04X}"
        while not self.stop.wait(0.02):
            try:
                inodes = {os.readlink(f"/proc/{self.pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{self.pid}/fd")
                          if os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")}
                for table in ("tcp", "tcp6"):
                    for line in pathlib.Path(f"/proc/{self.pid}/net/{table}").read_text().splitlines()[1:]:
                        fields = line.split()
                        if fields[2].endswith(remote) and fields[9] in inodes:
                            self.seen.add(fields[1])  # its local address and port: one per connection
            except OSError:  # the process ended, or a descriptor closed while being read
                continue

    def close(self) -> int:
        self.stop.set()
        self.thread.join()
        return len(self.seen)


async def clean_up(driver: Driver, size: int, unrelated: int, as_operator: bool = False, running: int = 0) -> None:
    """On a real API server: remove what the run created. The Workloads go first, while the operator runs
    (it deletes their pods and releases them); a namespace alone would wait for a namespace controller.
    ``as_operator`` (the floors): nothing runs that would, so the driver releases and deletes them itself."""
    limit = asyncio.Semaphore(50)

    async def delete(url: str) -> None:
        async with limit:
            await driver.call("DELETE", url, ok=(404,))

    async def release(workload: str) -> None:
        async with limit:
            await driver.call("PATCH", f"{driver.workloads_url}/{workload}", {"metadata": {"finalizers": None}}, MERGE,
                              ok=(404,))

    if as_operator:
        await asyncio.gather(*(release(f"w{i}") for i in range(size)),
                             *(delete(f"{driver.pods_url}/w{i}-1") for i in range(size)))
    await asyncio.gather(*(delete(f"{driver.workloads_url}/w{i}") for i in range(size)),
                         *(delete(f"{driver.workloads_url}/r{i}") for i in range(running)))
    for _ in range(600):
        async with driver.session.get(driver.workloads_url, params={"limit": "1"}) as response:
            if not (await response.json())["items"]:
                break
        await asyncio.sleep(0.5)
    else:
        print(f"warning: Workloads left in namespace {driver.namespace} after 300 s", file=sys.stderr)
    await asyncio.gather(*(delete(f"{driver.pods_url}/other-{i}") for i in range(unrelated)))
    await driver.call("DELETE", f"{driver.base}/api/v1/namespaces/{driver.namespace}")


async def stop(operator: subprocess.Popen[bytes] | Profiled, grace: float = 30) -> float:
    """SIGTERM, and SIGKILL after ``grace`` seconds (as the kubelet does); returns the seconds it took to exit.
    Waited for in a thread: the emulated API that the operator says goodbye to runs in this loop."""
    started = time.perf_counter()
    operator.terminate()
    try:
        await asyncio.to_thread(operator.wait, grace)
    except subprocess.TimeoutExpired:
        print(f"the operator did not stop within {grace:.0f} s of SIGTERM: killed", file=sys.stderr)
        operator.kill()
        await asyncio.to_thread(operator.wait)
    return time.perf_counter() - started


class Profiled:
    """The operator started under ``py-spy record`` (it samples the thread holding the GIL 100 times a second,
    without pausing it, and writes collapsed stacks when the operator exits), in place of the operator's own
    Popen: ``pid`` is the operator's, and signals go to the operator, not to py-spy. (py-spy cannot attach to a
    running process on a machine without CAP_SYS_PTRACE, as here; it can always trace its own child.)"""

    def __init__(self, command: list[str], output: pathlib.Path, **popen: Any) -> None:
        spy = pathlib.Path(sys.executable).with_name("py-spy")
        self.spy = subprocess.Popen([str(spy), "record", "--gil", "--nonblocking", "--rate", "100", "--format", "raw",
                                     "--output", str(output), "--", *command], **popen)
        children = pathlib.Path(f"/proc/{self.spy.pid}/task/{self.spy.pid}/children")
        deadline = time.monotonic() + 30
        while not (pids := children.read_text().split()):
            if self.spy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("py-spy did not start the operator (is it installed? `pip install py-spy`)")
            time.sleep(0.01)
        self.pid = int(pids[0])

    def terminate(self) -> None:
        os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def poll(self) -> int | None:
        return self.spy.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.spy.wait(timeout)  # py-spy ends once the operator has, its profile written


async def one_run(api: BenchApi, mode: str, size: int, unrelated: int, timeout: float,
                  one_at_a_time: bool = False, baseline: pathlib.Path | None = None, replicas: int = 8,
                  profile: pathlib.Path | None = None, running: int = 0,
                  baseline_environment: dict[str, str] | None = None) -> Run:
    """One row; ``baseline``: a folder holding another version's ``workload_operator`` package, run instead (with
    ``baseline_environment`` over the operator's environment);
    ``replicas``: the pods of each gang (gang mode only); ``profile``: a folder for py-spy's profiles of the
    operator, one of the run and one of the restart; ``running``: Workloads (batch or gang) started after the
    burst and left running, for the restart to find beside the finished ones."""
    replicas = replicas if mode == "gang" else 1
    if running and mode not in ("batch", "gang"):
        raise ValueError(f"Workloads left running are batch or gang ones, not {mode}")
    run = Run(mode=mode, size=size, unrelated=unrelated, one_at_a_time=one_at_a_time, replicas=replicas,
              baseline=baseline is not None, running=running)
    namespace = "bench-" + uuid.uuid4().hex[:6]
    log = api.kubeconfig.with_name(f"operator-{namespace}.log")
    if mode == JOB_CONTROLLER and api.plane is None:
        raise RuntimeError("the job-controller mode runs on the control plane that --real starts")
    async with aiohttp.ClientSession(headers=api.headers, connector=aiohttp.TCPConnector(ssl=api.ssl)) as session:
        driver = Driver(api.url, namespace, session, replicas)
        await driver.call("POST", f"{api.url}/api/v1/namespaces", {"metadata": {"name": namespace}})
        # Without a controller-manager nobody creates it, and ServiceAccount admission would refuse the pods.
        await driver.call("POST", f"{api.url}/api/v1/namespaces/{namespace}/serviceaccounts",
                          {"metadata": {"name": "default"}}, ok=(409,))
        await asyncio.gather(*(driver.call("POST", driver.pods_url, {
            "metadata": {"name": f"other-{i}", "labels": {"app": "unrelated"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}) for i in range(unrelated)))
        run.round_trips = await asyncio.wait_for(bare_round_trips(driver, 200), 120)
        watches = await driver.watch(api, jobs=mode == JOB_CONTROLLER)
        environment = operator_environment(baseline, baseline_environment)

        starts = 0

        def start_operator() -> subprocess.Popen[bytes] | Profiled:
            nonlocal starts
            starts += 1
            if mode == JOB_CONTROLLER:  # Kubernetes' own, as its own process and identity, on the same server
                assert api.plane is not None
                # No client-side rate limit (kube-controller-manager's default is 20 requests/s): the operator has
                # none, and the row compares the controllers, not a setting of their client.
                return api.plane.start_controller_manager(("job-controller",), name=f"job-controller-{namespace}",
                                                          options=JOB_CONTROLLER_OPTIONS)
            command = ["-m", "benchmarks.kopf_floor", "--namespace", namespace, *FLOORS[mode]] if mode in FLOORS else [
                "-m", "workload_operator", "run", "--namespace", namespace, "--liveness", "off", "--metrics-port", "0",
                "--backoff", "0", "--no-leader-elect"]  # one replica: its own cost only
            popen: dict[str, Any] = {"env": {**environment, "KUBECONFIG": str(api.kubeconfig)},
                                     "stdout": subprocess.DEVNULL}
            with log.open("ab") as stderr:
                if profile is not None:
                    name = f"{mode}-{run.label.replace(' ', '-')}{'-restart' if starts > 1 else ''}.txt"
                    return Profiled([sys.executable, *command], profile / name, stderr=stderr, **popen)
                return subprocess.Popen([sys.executable, *command], stderr=stderr, **popen)

        operator = start_operator()
        exited = asyncio.ensure_future(asyncio.to_thread(operator.wait))
        connections = Connections(operator.pid, int(api.url.rsplit(":", 1)[1])) if api.plane is not None else None
        lifecycles: list[asyncio.Task[None]] = []
        try:
            await operator_watching(api, mode=mode)
            first = len(api.log(0))
            cpu_at_start, idle_rss_mb = process_usage(operator.pid, "VmRSS")
            server_at_start = server_cpu(api)
            started = time.perf_counter()
            for i in range(size):
                lifecycles.append(asyncio.create_task(driver.lifecycle(f"w{i}", mode)))
                if one_at_a_time:  # no load: the operator's reaction alone
                    await asyncio.wait_for(unless_something_fails(lifecycles[-1], watches, exited), timeout)
            await asyncio.wait_for(unless_something_fails(asyncio.gather(*lifecycles), watches, exited), timeout)
            run.seconds = time.perf_counter() - started
            await settled(api, operator.pid, mode=mode)
            if connections is not None:
                run.connections = connections.close()
            count_requests(run, api, first)
            cpu, run.peak_rss_mb = process_usage(operator.pid)
            run.cpu_seconds = cpu - cpu_at_start
            if server_at_start is not None:
                run.server_cpu_seconds = (server_cpu(api) or 0.0) - server_at_start
            run.after_burst_kb = (process_usage(operator.pid, "VmRSS")[1] - idle_rss_mb) * 1024 / size
            # The burst's own figures, before any Workloads are left running (--running).
            run.latencies, run.pods = list(driver.latencies), len(driver.pods)
            run.transitions = sum(driver.counted.values())  # the operator's own count, in each status
            if running:  # left running beside the finished ones, for the restart to find
                await asyncio.wait_for(unless_something_fails(asyncio.gather(
                    *(driver.keep_running(f"r{i}", mode) for i in range(running))), watches, exited), timeout)
                await settled(api, operator.pid, mode=mode)
            # Memory per Workload held: a new operator finds the N finished Workloads (and their pods), lists them
            # and has nothing to do; its RSS once settled, over the idle RSS of the first one, per Workload.
            run.stop_seconds = await stop(operator)
            await exited
            restart = len(api.log(0))
            operator = start_operator()
            exited = asyncio.ensure_future(asyncio.to_thread(operator.wait))
            await operator_watching(api, timeout=timeout, since=restart, mode=mode)  # it lists N objects and pods
            await settled(api, operator.pid, timeout=timeout, mode=mode)
            run.restart_cpu, run.restart_rss_mb = process_usage(operator.pid, "VmRSS")
            run.held_kb = (run.restart_rss_mb - idle_rss_mb) * 1024 / size
            run.restart_writes = sum(1 for r in api.log(restart) if is_subject(r, mode)
                                     and (route := parse_resource_path(r.path)) is not None
                                     and not (r.method == "GET" and route.name is None))
        except BaseException:
            tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
            print(f"the operator's last log lines ({log}):\n" + "\n".join(tail), file=sys.stderr)
            raise
        finally:
            if connections is not None:
                connections.close()
            for task in (*lifecycles, *watches):
                task.cancel()
            await asyncio.gather(*lifecycles, *watches, return_exceptions=True)  # reaped: none left for the next run
            if api.plane is None and not api.emulated and operator.poll() is None:  # a server of the user's keeps it
                try:
                    await clean_up(driver, size, unrelated, as_operator=mode in FLOORS, running=run.running)
                except Exception as exc:
                    print(f"warning: could not clean up namespace {namespace}: {exc!r}", file=sys.stderr)
            stopped = await stop(operator)
            run.stop_seconds = run.stop_seconds or stopped
            await exited
    run.finish_latencies = driver.finish_latencies
    if run.transitions != size * len(PATHS[mode]):
        raise RuntimeError(f"{run.transitions} transitions counted in the statuses, not {size * len(PATHS[mode])}")
    return run


def table(runs: list[Run]) -> str:
    head = ("| mode | workloads | transitions | status writes / transition | other requests / transition | "
            "other requests / pod | "
            "latency p50 / p99 (ms) | bare round trip p50 / p99 (ms) | ratio p50 | transitions/s | operator CPU (s) | "
            "CPU per lifecycle (ms) | operator peak RSS (MB) | memory per Workload held (kB) | "
            "operator TCP connections | stop after SIGTERM (s) |")
    lines = [head, "|" + " --- |" * 16]
    for r in runs:
        p50, p99 = percentile(r.latencies, 0.5) * 1000, percentile(r.latencies, 0.99) * 1000
        b50, b99 = percentile(r.round_trips, 0.5) * 1000, percentile(r.round_trips, 0.99) * 1000
        if r.mode in FLOORS:  # the driver made the writes: no operator requests, no reaction to time
            requests = latency = "– | – | –"
        else:
            requests = (f"{r.status_writes / r.transitions:.2f} | {sum(r.others.values()) / r.transitions:.2f} | "
                        f"{sum(r.others.values()) / r.pods:.2f}")
            latency = f"{p50:.1f} / {p99:.1f} | {b50:.1f} / {b99:.1f} | {p50 / b50:.1f}"
        lines.append(f"| {r.mode} | {r.label} | {r.transitions} | {requests} | {latency} | "
                     f"{r.transitions / r.seconds:.0f} | {r.cpu_seconds:.1f} | {r.cpu_seconds / r.size * 1000:.1f} | "
                     f"{r.peak_rss_mb:.0f} | {r.held_kb:.1f} | {r.connections} | {r.stop_seconds:.1f} |")
    return "\n".join(lines)


def breakdown(runs: list[Run]) -> str:
    """The other requests, per workload (and per pod, for a gang), once per mode (they do not depend on N)."""
    lines, done = ["Other requests of the operator, per workload:"], set()
    for r in runs:
        if (r.mode, r.replicas, r.baseline) not in done and not r.unrelated and r.mode not in (*FLOORS, JOB_CONTROLLER):
            done.add((r.mode, r.replicas, r.baseline))
            per = ", ".join(f"{what} {count / r.size:.2f}" for what, count in sorted(r.others.items()))
            per_pod = ", ".join(f"{what} {count / r.pods:.2f}" for what, count in sorted(r.others.items()))
            gang = f" of {r.replicas} pods" if r.replicas > 1 else ""
            lines.append(f"- {r.mode}{gang}{' (baseline)' if r.baseline else ''}: {per}"
                         + (f"; per pod: {per_pod}" if r.replicas > 1 else ""))
    restarted = ", ".join(f"{r.mode} {r.label}: {r.restart_writes}" for r in runs)
    lines.append(f"Requests of an operator restarted with the finished Workloads (none expected): {restarted}")
    restart_cpu = ", ".join(f"{r.mode} {r.label}: {r.restart_cpu:.1f}" for r in runs)
    lines.append(f"CPU seconds that restarted operator took to start, list them and settle: {restart_cpu}")
    restart_rss = ", ".join(f"{r.mode} {r.label}: {r.restart_rss_mb:.0f}"
                            + (f" ({r.running} more running)" if r.running else "") for r in runs)
    lines.append(f"RSS (MB) of that restarted operator once settled: {restart_rss}")
    left = ", ".join(f"{r.mode} {r.label}: {r.after_burst_kb:.1f} against {r.held_kb:.1f}" for r in runs)
    lines.append(f"Memory per Workload (kB) the operator holds once its burst has finished, against a restarted one: {left}")
    if served := [r for r in runs if r.server_cpu_seconds is not None]:
        server = ", ".join(f"{r.mode} {r.label}: {r.server_cpu_seconds / r.size * 1000:.1f}" for r in served)
        lines.append(f"CPU (ms) kube-apiserver and etcd took per lifecycle during the burst, the driver's requests "
                     f"included: {server}")
    return "\n".join(lines)


def side_by_side(runs: list[Run]) -> str:
    """The operator's batch rows beside the Job controller's of the same size, measured in the same run."""
    lines = []
    for job in (r for r in runs if r.mode == JOB_CONTROLLER and not r.one_at_a_time):
        ours = next((r for r in runs if r.mode == "batch" and r.size == job.size and not r.one_at_a_time
                     and not r.unrelated and not r.baseline), None)
        if ours is None:
            continue

        def row(what: str, job_value: float, our_value: float, unit: str, digits: int = 1) -> str:
            ratio = f" ({our_value / job_value:.1f}×)" if job_value else ""
            return f"| {what} | {job_value:,.{digits}f}{unit} | {our_value:,.{digits}f}{unit}{ratio} |"

        def writes(r: Run) -> float:
            return (r.status_writes + sum(r.others.values())) / r.size

        alone = next((r for r in runs if r.mode == "batch" and r.one_at_a_time and not r.baseline), ours)
        b50 = percentile(alone.round_trips, 0.5) * 1000
        lines += [f"Side by side, {job.size} at once, one pod each (Running, then Succeeded exit 0), the same driver:",
                  "", "| | Job controller | this operator |", "| --- | --- | --- |",
                  row("CPU per object, whole lifecycle", job.cpu_seconds / job.size * 1000,
                      ours.cpu_seconds / ours.size * 1000, " ms", 2),
                  row("peak RSS", job.peak_rss_mb, ours.peak_rss_mb, " MB", 0),
                  row("memory per object held, after a restart", job.held_kb, ours.held_kb, " kB"),
                  row(f"{job.size} at once, first create to last finished", job.seconds, ours.seconds, " s"),
                  row("pod Succeeded → finished, p50", percentile(job.finish_latencies, 0.5) * 1000,
                      percentile(ours.finish_latencies, 0.5) * 1000, " ms"),
                  row("writes per object", writes(job), writes(ours), "", 2),
                  row("TCP connections to the API server", job.connections, ours.connections, "", 0),
                  *([row("kube-apiserver and etcd CPU per object, the driver's requests included",
                         job.server_cpu_seconds / job.size * 1000, ours.server_cpu_seconds / ours.size * 1000, " ms", 2)]
                    if job.server_cpu_seconds is not None and ours.server_cpu_seconds is not None else []),
                  f"| reaction p50, {alone.label} (every write the driver makes), over the bare round trip "
                  f"({b50:.1f} ms) | – | {percentile(alone.latencies, 0.5) * 1000:.1f} ms "
                  f"({percentile(alone.latencies, 0.5) * 1000 / b50:.1f}×) |",
                  "", f"- Job controller's writes per Job: " + ", ".join(
                      f"{what} {count / job.size:.2f}" for what, count in sorted(job.others.items()))
                  + f", status {job.status_writes / job.size:.2f}"]
    return "\n".join(lines)


def growth(runs: list[Run]) -> str:
    """How throughput, CPU per transition and memory change from the smallest N to the largest, per mode."""
    lines = []
    for mode, baseline in dict.fromkeys((r.mode, r.baseline) for r in runs):
        swept = sorted((r for r in runs if r.mode == mode and r.baseline == baseline and not r.one_at_a_time
                        and not r.unrelated), key=lambda r: r.size)
        if len(swept) < 2:
            continue
        low, high = swept[0], swept[-1]
        lines.append(f"- {mode}{' (baseline)' if baseline else ''}, {low.size} → {high.size} workloads: transitions/s ×"
                     f"{(high.transitions / high.seconds) / (low.transitions / low.seconds):.2f}, CPU per transition ×"
                     f"{(high.cpu_seconds / high.transitions) / (low.cpu_seconds / low.transitions):.2f}, peak RSS ×"
                     f"{high.peak_rss_mb / low.peak_rss_mb:.2f} (+{(high.peak_rss_mb - low.peak_rss_mb) / (high.size - low.size) * 1024:.0f} kB per workload)")
    return "Growth:\n" + "\n".join(lines) if lines else ""


async def bench(args: argparse.Namespace) -> tuple[list[Run], list[str]]:
    """Each run on an API of its own (a new emulator, or a new namespace), so that no run inherits another's
    objects. A run that fails is reported and the others go on."""
    sizes, modes, runs, failures = [int(s) for s in args.sizes.split(",")], args.modes.split(","), [], []
    plan = [("batch", args.one_at_a_time, 0, True)] if args.one_at_a_time else []
    plan += [(mode, size, 0, False) for mode in modes for size in sizes]
    plan += [("batch", sizes[0], args.unrelated_pods, False)] if args.unrelated_pods else []
    # With --baseline, each row runs twice, the baseline's operator first, so the two are measured side by side.
    versions = [args.baseline, None] if args.baseline else [None]
    description, skipped = "no run", []
    for (mode, size, unrelated, one_at_a_time), baseline in ((row, v) for row in plan for v in versions):
        gang = f" × {args.replicas} pods" if mode == "gang" else ""
        started, what = time.monotonic(), f"{mode}, {size}{gang}{' one at a time' if one_at_a_time else ''}, " \
                                          f"{unrelated} unrelated pods{' (baseline)' if baseline else ''}"
        if mode == "gang" and baseline is not None and not knows_gangs(baseline):
            skipped.append(f"{what}: skipped, the baseline's operator does not know gangs (spec.replicas)")
            print(skipped[-1], file=sys.stderr, flush=True)
            continue
        try:
            async with api_for(args.kubeconfig, real=args.real) as api:
                description = api.description
                runs.append(await one_run(api, mode, size, unrelated, args.timeout, one_at_a_time, baseline,
                                          args.replicas, None if mode == JOB_CONTROLLER else args.profile,
                                          args.running if mode in ("batch", "gang") else 0,
                                          dict(args.baseline_env)))
        except Exception:
            failures.append(f"{what}: {traceback.format_exc()}")
            print(f"FAILED: {failures[-1]}", file=sys.stderr, flush=True)
            continue
        print(f"{what}: {time.monotonic() - started:.0f} s\n{table(runs[-1:]).splitlines()[-1]}",
              file=sys.stderr, flush=True)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{description}; operator in its own process")
    print(f"command: python -m benchmarks.lifecycle {' '.join(sys.argv[1:])}".rstrip() + "\n")
    if skipped:
        print("\n".join(skipped) + "\n")
    return runs, failures


def knows_gangs(package: pathlib.Path) -> bool:
    """Whether the ``workload_operator`` package in folder ``package`` (a --baseline) runs gangs: an operator from
    before them would run one pod whatever spec.replicas says, and the driver would wait for the others forever."""
    gang = package / "workload_operator" / "lifecycle" / "gang.py"
    return gang.is_file() and "def attempt_pod_names(" in gang.read_text()


def operator_environment(baseline: pathlib.Path | None = None,
                         baseline_environment: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, as the operator (or floor) it starts gets it: not in-cluster; for a
    ``baseline``, its package ahead of the installed one, and ``baseline_environment`` over the rest."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
    if baseline is not None:
        environment["PYTHONPATH"] = os.pathsep.join([str(baseline), *filter(None, [environment.get("PYTHONPATH")])])
        environment.update(baseline_environment or {})
    return environment


def environment_variable(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lifecycle", description=__doc__.split("\n\n")[1])
    parser.add_argument("--sizes", default="100,1000,5000", help="workload counts to sweep (default %(default)s)")
    parser.add_argument("--modes", default="batch,service,worker-loss",  # gang and the floors: on demand
                        help=f"lifecycles to sweep, of {', '.join(PATHS)} (default %(default)s)")
    parser.add_argument("--replicas", type=int, default=8, metavar="R",
                        help="pods per workload in gang mode (spec.replicas, 2 to 256; default %(default)s)")
    parser.add_argument("--unrelated-pods", type=int, default=5000, metavar="N",
                        help="for the extra run of the smallest size (default %(default)s; 0: skip)")
    parser.add_argument("--one-at-a-time", type=int, default=50, metavar="N",
                        help="first, N batch workloads one after another: the reaction without load "
                             "(default %(default)s; 0: skip)")
    parser.add_argument("--kubeconfig", type=pathlib.Path, help="a real API server's (default: the emulated API)")
    parser.add_argument("--real", action="store_true",
                        help="start the project's own control plane (tests/controlplane/build.sh) for each run, read "
                             "requests from its audit log; needed by the job-controller mode")
    parser.add_argument("--baseline", type=pathlib.Path, metavar="DIR",
                        help="also run each row with the operator package in DIR (another version's, e.g. from "
                             "`git archive REV operator | tar -x -C /tmp/base`: DIR=/tmp/base/operator), just before "
                             "this checkout's: a comparison measured side by side")
    parser.add_argument("--baseline-env", type=environment_variable, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="an environment variable for the baseline's operator only, over this process's environment "
                             "(e.g. PYTHONMALLOC=pymalloc while this command runs with PYTHONMALLOC=malloc, and --baseline "
                             "a copy of this checkout's package: two allocators side by side); repeatable")
    parser.add_argument("--profile", type=pathlib.Path, metavar="DIR",
                        help="run the operator (or floor) under py-spy and write its profiles into DIR, one per run "
                             "and one per restart (`python -m benchmarks.profile FILE` summarizes one)")
    parser.add_argument("--running", type=int, default=0, metavar="K",
                        help="batch and gang rows: after the burst, start K more Workloads and leave them running, so "
                             "that the restart finds them beside the N finished ones (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take (default %(default)s)")
    args = parser.parse_args(argv)
    if unknown := set(args.modes.split(",")) - set(PATHS):
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}: the modes are {', '.join(PATHS)}")
    if JOB_CONTROLLER in args.modes.split(",") and not args.real:
        parser.error("the job-controller mode runs Kubernetes' Job controller on the control plane that --real starts")
    if args.real and args.kubeconfig:
        parser.error("--real starts a control plane of its own: leave out --kubeconfig")
    if args.baseline_env and args.baseline is None:
        parser.error("--baseline-env sets the environment of the baseline's operator: it needs --baseline")
    if not 2 <= args.replicas <= 256:
        parser.error(f"--replicas {args.replicas}: a gang has 2 to 256 pods")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs, failures = asyncio.run(bench(args))
    if runs:
        print(table(runs))
        print("\n" + breakdown(runs))
    if text := side_by_side(runs):
        print("\n" + text)
    if text := growth(runs):
        print("\n" + text)
    if failures:
        sys.exit(f"\n{len(failures)} run(s) failed:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
