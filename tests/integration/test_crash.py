"""Crash tests: the operator, a separate process, is SIGKILLed at seeded random points while workloads move.

Each seed kills it KILLS_PER_SEED times (5 seeds: 200 kill points in all); new workloads keep arriving
(gangs of 3 pods among them), the simulated kubelet keeps playing pods while the operator is dead, and a
user cancels and deletes along the way. Afterwards every history is a valid path of the map (no transition lost or recorded
twice), every workload reached its right final state with a single attempt, and nothing is left over.
The seed is printed, so a failure can be replayed with WORKLOAD_CRASH_SEEDS=<seed>.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal

import pytest

from tests.harness import Cluster, assert_valid_history, wait_for
from tests.processes import Zygote
from workload_operator.devcluster.emulator import OPERATOR_AGENTS

SEEDS = [int(s) for s in os.environ.get("WORKLOAD_CRASH_SEEDS", "11,22,33,44,55").split(",")]
KILLS_PER_SEED = int(os.environ.get("WORKLOAD_CRASH_KILLS", "40"))
GANG = 3  # pods of each gang workload


def env(exit_code: int = 0, seconds: float = 0.4) -> list[dict[str, str]]:
    return [{"name": "SIMULATE_EXIT_CODE", "value": str(exit_code)}, {"name": "SIMULATE_RUN_SECONDS", "value": str(seconds)}]


class RequestCounter:
    """Counts the operator's requests, reading only what was logged since the last look."""

    def __init__(self, kube_api) -> None:
        self.kube_api, self.seen, self.operators = kube_api, 0, 0

    @property
    def count(self) -> int:
        new = self.kube_api.requests_since(self.seen)
        self.seen += len(new)
        self.operators += sum(1 for r in new if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS))
        return self.operators


RUN = "run --namespace ml --liveness off --metrics-port 0 --backoff 0.2 --backoff-cap 1 --no-leader-elect"


class OperatorProcess:
    """One operator at a time, started and killed again and again."""

    def __init__(self, kubeconfig, log) -> None:
        self.zygote = Zygote(kubeconfig, log)
        self.pid: int | None = None

    def start(self) -> None:
        self.pid = self.zygote.start(RUN)

    def kill(self) -> None:
        assert self.pid is not None
        self.zygote.end(self.pid, signal.SIGKILL)

    def stop(self) -> None:
        assert self.pid is not None
        self.zygote.end(self.pid, signal.SIGTERM)

    def close(self) -> None:
        self.zygote.close()


async def _finished(cluster: Cluster, name: str) -> dict | None:
    workload = await cluster.workload(name)
    return workload if (workload.get("status") or {}).get("state") in ("completed", "cancelled", "failed") else None


@pytest.mark.parametrize("seed", SEEDS)
async def test_sigkill_at_random_points_loses_and_doubles_nothing(seed, cluster: Cluster, kube_api, kubeconfig,
                                                                   kubelet, tmp_path, capsys):
    with capsys.disabled():
        print(f"\ncrash test: seed={seed}, {KILLS_PER_SEED} kills (replay: WORKLOAD_CRASH_SEEDS={seed})")
    rng = random.Random(seed)
    log = open(tmp_path / "operator.log", "wb")  # noqa: SIM115
    operator = OperatorProcess(kubeconfig, log)
    try:
        await _kill_and_verify(seed, rng, cluster, kube_api, operator)
    finally:
        operator.close()
        log.close()


async def _kill_and_verify(seed, rng, cluster: Cluster, kube_api, operator: OperatorProcess) -> None:
    expected: dict[str, str | None] = {}  # name -> final state (None: deleted)
    requests = RequestCounter(kube_api)

    for kill in range(KILLS_PER_SEED):
        # New work every round, so that kills land in the middle of transitions.
        name = f"job-{kill}"
        outcome = rng.choice(["completed", "completed", "failed"])
        await cluster.create_workload(name, env=env(0 if outcome == "completed" else 3, rng.uniform(0.1, 0.8)),
                                      maxAttempts=1)
        expected[name] = outcome
        if kill % 8 == 3:
            await cluster.create_workload(f"svc-{kill}", type="service", port=8080)
            expected[f"svc-{kill}"] = "stopped"  # completed if it was serving when cancelled, else cancelled
        if kill % 8 == 5:  # a gang: a kill between its pods' creations must not make a second gang
            outcome = rng.choice(["completed", "failed"])
            await cluster.create_workload(f"gang-{kill}", replicas=GANG, maxAttempts=1,
                                          env=env(0 if outcome == "completed" else 3, rng.uniform(0.1, 0.8)))
            expected[f"gang-{kill}"] = outcome
        if kill % 8 == 7:  # users act while the operator comes and goes
            await cluster.patch_spec(f"svc-{kill - 4}", cancel=True)
            await cluster.create_workload(f"long-{kill}", env=env(0, 600))
            expected[f"long-{kill}"] = "cancelled"
        if kill % 10 == 9:
            await cluster.delete_workload(f"job-{kill - 1}")
            expected[f"job-{kill - 1}"] = None
        if kill % 8 == 0 and kill >= 8:
            await cluster.patch_spec(f"long-{kill - 1}", cancel=True)

        seen = requests.count
        operator.start()

        async def talking() -> bool:
            return requests.count > seen

        await wait_for(talking, "the operator to talk to the API", timeout=30)
        await asyncio.sleep(rng.uniform(0.0, 0.5))  # the kill point: a seeded random moment of its work
        operator.kill()

    for name, state in expected.items():  # the services and long jobs not cancelled yet
        if state in ("stopped", "cancelled"):
            await cluster.patch_spec(name, cancel=True)
    operator.start()
    transitions = 0
    try:
        for name, state in expected.items():
            if state is None:
                await cluster.wait_gone(name, timeout=60)
                assert await cluster.pod(f"{name}-1") is None
                continue
            if state == "stopped":
                workload = await wait_for(lambda: _finished(cluster, name), f"{name} to finish", timeout=60)
                served = any(entry["to"] == "serving" for entry in workload["status"]["history"])
                state = "completed" if served else "cancelled"
            workload = await cluster.wait_state(name, state, timeout=60)
            assert_valid_history(workload)  # connected, along the map: nothing lost, nothing recorded twice
            transitions += len(workload["status"]["history"])
            attempts = workload["status"]["attempts"]
            assert attempts <= 1, f"{name}: a kill made a second pod"
            if name.startswith("gang-"):  # its pods, each made once, of attempt 1 only; a completed gang keeps all
                pods = await cluster._call(cluster.core.list_namespaced_pod, cluster.namespace,
                                           label_selector=f"ml.lifecycle.dev/workload={name}")
                left = {p["metadata"]["name"] for p in pods["items"]}
                made = {f"{name}-1-{i}" for i in range(GANG)}
                assert left == made if state == "completed" else left <= made, f"{name}: {sorted(left)}"
            if any(entry["to"] == "running" for entry in workload["status"]["history"]):
                assert attempts == 1
            if state == "failed":
                assert workload["status"]["reason"] == "ExitCode", (name, workload["status"]["message"])
    finally:
        operator.stop()
    print(f"crash test: seed={seed}: {KILLS_PER_SEED} kills, {len(expected)} workloads, {transitions} transitions, "
          "every history a valid path")
