"""The failover scenario both operator tiers run: two operator processes with leader election, the leader
SIGKILLed at seeded random points and once SIGTERMed while 50 workloads move.

Like the Deployment's two replicas, a process that ends is replaced by a new one, which stands by. Each
round adds ten workloads, waits a seeded random moment of the leader's work, ends the leader and measures
the takeover: from the signal until the Lease names the other process. Afterwards every history is a valid
path of the map (nothing lost, nothing recorded twice), every workload is in its right final state with a
single pod, and the takeover times are printed (never asserted: they depend on the machine).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import signal
import socket
import time
from typing import Any, Protocol

import kubernetes
from kubernetes.client.exceptions import ApiException

from tests.harness import Cluster, assert_valid_history, wait_for
from tests.processes import Zygote

LEASE = "workload-operator-test"
# The shortest timing the elector accepts (whole-second lease; renew deadline > 1.2 × retry period).
ELECTION = "--lease-duration 3 --renew-deadline 1.5 --retry-period 1"
ROUNDS = 5  # the leader ends once per round: SIGKILL, except in the round below
SIGTERM_ROUND = 2
FINAL = ("completed", "failed", "cancelled")


def simulate(exit_code: int = 0, seconds: float = 0.4) -> list[dict[str, str]]:
    """The simulated kubelet's instructions (devcluster/kubelet.py): how long the pod runs and how it exits."""
    return [{"name": "SIMULATE_EXIT_CODE", "value": str(exit_code)},
            {"name": "SIMULATE_RUN_SECONDS", "value": str(seconds)}]


@dataclasses.dataclass
class Takeover:
    signal: str
    seconds: float


class Replicas:
    """Two operator processes campaigning for one Lease; one that ends is replaced, as a Deployment does."""

    def __init__(self, zygote: Zygote, namespace: str, count: int = 2) -> None:
        self.zygote, self.count, self.pids = zygote, count, []
        self.args = (f"run --namespace {namespace} --liveness off --metrics-port 0 --backoff 0.2 --backoff-cap 1 "
                     f"--lease-namespace {namespace} --lease-name {LEASE} {ELECTION}")

    @staticmethod
    def identity(pid: int) -> str:
        return f"{socket.gethostname()}_{pid}"  # kube.replica_identity() outside a pod

    def pid_of(self, identity: str | None) -> int | None:
        return next((pid for pid in self.pids if self.identity(pid) == identity), None)

    def replace_ended(self, *, except_pid: int | None = None) -> None:
        self.pids = [pid for pid in self.pids if pid == except_pid or self.zygote.alive(pid)]
        while len(self.pids) < self.count:
            self.pids.append(self.zygote.start(self.args))

    def stop(self) -> None:
        for pid in self.pids:
            if self.zygote.alive(pid):
                self.zygote.end(pid, signal.SIGTERM)


async def holder(cluster: Cluster) -> str | None:
    api = kubernetes.client.CoordinationV1Api(cluster.api_client)
    try:
        lease = await asyncio.to_thread(api.read_namespaced_lease, LEASE, cluster.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return lease.spec.holder_identity if lease.spec else None


async def _finished(cluster: Cluster, name: str) -> dict[str, Any] | None:
    workload = await cluster.workload(name)
    return workload if workload and (workload.get("status") or {}).get("state") in FINAL else None


async def _where(cluster: Cluster, name: str) -> str:
    status = ((await cluster.workload(name)) or {}).get("status") or {}
    listing = await cluster._call(cluster.core.list_namespaced_pod, cluster.namespace)
    pods = [{"name": pod["metadata"]["name"], "phase": pod.get("status", {}).get("phase"),
             "nodeName": pod["spec"].get("nodeName"), **{k: pod["metadata"][k] for k in (
                 "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers") if k in pod["metadata"]}}
            for pod in listing["items"] if pod["metadata"]["name"].startswith(f"{name}-")]
    return f"status: {status}; pods: {pods}"


class Quiet(Protocol):
    """Checks, where the tier can see every request, that nobody reconciles while nobody leads."""

    def begin(self, leader: str) -> None:
        """The SIGKILLed leader (this identity) is gone."""

    def end(self) -> None:
        """A standby holds the Lease now: fail if anything but the election talked to the API in between."""


async def failover(cluster: Cluster, zygote: Zygote, seed: int, quiet: Quiet | None = None) -> list[Takeover]:
    rng = random.Random(seed)
    replicas = Replicas(zygote, cluster.namespace)
    expected: dict[str, str] = {}  # name -> final state ("stopped": completed if it served, else cancelled)
    takeovers: list[Takeover] = []
    replicas.replace_ended()
    try:
        for round_ in range(ROUNDS):
            for i in range(8):  # batch jobs of varied length and outcome
                name, outcome = f"job-{round_}-{i}", rng.choice(["completed", "completed", "completed", "failed"])
                await cluster.create_workload(name, env=simulate(0 if outcome == "completed" else 3,
                                                                 rng.uniform(0.1, 1.5)), maxAttempts=1)
                expected[name] = outcome
            await cluster.create_workload(f"svc-{round_}", type="service", port=8080)
            await cluster.create_workload(f"long-{round_}", env=simulate(0, 600))
            expected[f"svc-{round_}"], expected[f"long-{round_}"] = "stopped", "cancelled"
            if round_:  # users cancel while the operators come and go
                await cluster.patch_spec(f"svc-{round_ - 1}", cancel=True)
                await cluster.patch_spec(f"long-{round_ - 1}", cancel=True)

            async def leading() -> str | None:
                replicas.replace_ended()
                identity = await holder(cluster)
                return identity if replicas.pid_of(identity) is not None else None

            leader = await wait_for(leading, "a leader", timeout=30)
            await asyncio.sleep(rng.uniform(0.2, 1.5))  # the kill point: a seeded random moment of the leader's work
            pid, sig = replicas.pid_of(leader), signal.SIGTERM if round_ == SIGTERM_ROUND else signal.SIGKILL
            assert pid is not None
            started = time.monotonic()
            zygote.send(pid, sig)
            if sig == signal.SIGKILL:
                await asyncio.to_thread(zygote.wait_gone, pid)
                if quiet is not None:
                    quiet.begin(leader)

            async def taken_over() -> str | None:
                identity = await holder(cluster)
                replicas.replace_ended(except_pid=pid)  # a standby that ended is replaced, not the leader signalled
                return identity if identity not in (None, leader) else None

            new = await wait_for(taken_over, f"a standby to take over from {leader}", timeout=30)
            takeovers.append(Takeover(sig.name, time.monotonic() - started))
            if sig == signal.SIGKILL and quiet is not None:
                quiet.end()
            print(f"failover: round {round_}: {sig.name} to the leader {leader}; {new} took over after "
                  f"{takeovers[-1].seconds:.2f}s")
            await asyncio.to_thread(zygote.wait_gone, pid)
            replicas.replace_ended()

        for round_ in range(ROUNDS):
            for name in (f"svc-{round_}", f"long-{round_}"):
                await cluster.patch_spec(name, cancel=True)
        for name, state in expected.items():
            try:
                workload = await wait_for(lambda: _finished(cluster, name), f"{name} to finish", timeout=60)
            except AssertionError as exc:  # say where it stopped, and with which pods
                raise AssertionError(f"{exc}; {await _where(cluster, name)}") from None
            if state == "stopped":
                served = any(entry["to"] == "serving" for entry in workload["status"]["history"])
                state = "completed" if served else "cancelled"
            assert workload["status"]["state"] == state, (name, workload["status"])
            assert_valid_history(workload)  # connected, along the map: nothing lost, nothing recorded twice
            assert workload["status"]["attempts"] <= 1, f"{name}: a takeover made a second pod"
            if state == "failed":
                assert workload["status"]["reason"] == "ExitCode", (name, workload["status"])
    finally:
        replicas.stop()
    return takeovers


def report(seed: int, takeovers: list[Takeover]) -> str:
    by_signal: dict[str, list[float]] = {}
    for takeover in takeovers:
        by_signal.setdefault(takeover.signal, []).append(takeover.seconds)
    parts = [f"{name}: " + ", ".join(f"{s:.2f}s" for s in times) + f" (max {max(times):.2f}s)"
             for name, times in sorted(by_signal.items())]
    return f"failover: seed={seed}, {ELECTION}; takeover after " + "; ".join(parts)
