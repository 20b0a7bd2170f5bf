"""Fault tests: full lifecycles while the API server misbehaves at seeded random points.

The emulator's fault plan (``devcluster.emulator.Faults``) answers some of the operator's writes with
409, 422 (a failed JSON-patch test), 500 or 503 and changes nothing, delays some answers and ends some
watch streams early. Meanwhile workloads go through batch success, batch failure, a gang of 3 that
completes, a service that serves and is cancelled, and a delete while running. Then the faults stop and everything settles. Afterwards:
every history is the expected path of the map, each transition logged once, one pod per attempt, each
kind of fault happened, and the operator counted and logged what it went through.
The seed is printed, so a failure can be replayed with WORKLOAD_FAULT_SEEDS=<seed>.
The last test pins down, without randomness, a bug the random one found.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.harness import DEADLINE, Cluster, assert_valid_history, wait_for
from tests.scenarios import SERVICE
from workload_operator import handlers, metrics  # noqa: F401 (metrics: registers them; read below from REGISTRY)
from workload_operator.devcluster.emulator import Faults, KubeAPIServer

pytestmark = pytest.mark.usefixtures("operator")

SEEDS = [int(s) for s in os.environ.get("WORKLOAD_FAULT_SEEDS", "101,202,303").split(",")]
PER_KIND = 3  # workloads of each kind per seed, all at once
FAULT_KINDS = ("409", "422", "500", "503", "slow", "drop")

START = [(None, "queued"), ("queued", "preparing"), ("preparing", "running")]
EXPECTED = {  # kind -> (final state, the whole history)
    "ok": ("completed", [*START, ("running", "collecting"), ("collecting", "completed")]),
    "gang": ("completed", [*START, ("running", "collecting"), ("collecting", "completed")]),
    "bad": ("failed", [*START, ("running", "failed")]),
    "svc": ("completed", [*START, ("running", "serving"), ("serving", "stopping"), ("stopping", "completed")]),
    "doomed": ("cancelled", [*START, ("running", "cancelled")]),  # deleted: read from the emulator's store
}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """The operator's waits before retrying after a transient API failure, a tenth as long: the same number of
    retries, doubling the same way, but five failures of one step in a row (a pod and a Service to create and a
    status to write: not rare at these rates) cost 1.5 s, not 15.5 s."""
    monkeypatch.setattr(handlers, "RETRY_DELAYS", QUICK_RETRY_DELAYS)


# A step may fail every one of its retries (a gang's three creations fail together one time in two at these rates)
# before a timer tries it again: the waits below allow for that backoff on top of the usual deadline, which a busy
# machine needs whole.
QUICK_RETRY_DELAYS = tuple(delay / 10 for delay in handlers.RETRY_DELAYS)
WAIT = DEADLINE + sum(QUICK_RETRY_DELAYS)


def api_errors(code: str) -> float:
    """workload_operator_api_errors_total summed over the operations, for one status code."""
    family = next(m for m in REGISTRY.collect() if m.name == "workload_operator_api_errors")
    return sum(REGISTRY.get_sample_value("workload_operator_api_errors_total", sample.labels) or 0.0
               for sample in family.samples if sample.name.endswith("_total") and sample.labels["code"] == code)


def conflicts() -> float:
    return REGISTRY.get_sample_value("workload_operator_conflicts_total") or 0.0


# --- the users and the kubelet, through the test's own client (never faulted) ------------------------

async def batch(cluster: Cluster, name: str, exit_code: int) -> None:
    await cluster.create_workload(name)
    await cluster.wait_pod(f"{name}-1", timeout=WAIT)
    await cluster.pod_running(f"{name}-1")
    await cluster.wait_state(name, "running", timeout=WAIT)
    await cluster.pod_exited(f"{name}-1", exit_code, message="ValueError: bad" if exit_code else '{"loss": 0.1}')


GANG = 3  # pods of each gang


def pod_names(kind: str, name: str, attempt: int) -> list[str]:
    return [f"{name}-{attempt}-{i}" for i in range(GANG)] if kind == "gang" else [f"{name}-{attempt}"]


async def gang(cluster: Cluster, name: str) -> None:
    await cluster.create_workload(name, replicas=GANG)
    for pod in pod_names("gang", name, 1):
        await cluster.wait_pod(pod, timeout=WAIT)
        await cluster.pod_running(pod)
    await cluster.wait_state(name, "running", timeout=WAIT)
    for pod in pod_names("gang", name, 1):
        await cluster.pod_exited(pod, 0, message='{"loss": 0.1}')


async def service(cluster: Cluster, name: str) -> None:
    await cluster.create_workload(name, **SERVICE)
    await cluster.wait_pod(f"{name}-1", timeout=WAIT)
    await cluster.pod_ready(f"{name}-1")
    await cluster.wait_state(name, "serving", timeout=WAIT)
    await cluster.patch_spec(name, cancel=True)


async def deleted_while_running(cluster: Cluster, name: str) -> None:
    await cluster.start_running(name)
    await cluster.delete_workload(name)


async def _at_least(lines: list, count: int) -> list | None:
    return lines if len(lines) >= count else None


def stored(kube_api: KubeAPIServer, resource: Any, name: str) -> list[dict[str, Any]]:
    """Every stored version of an object (deletions left out), oldest first; [] if it never existed."""
    key = (resource, "ml", name)
    return [dict(v.raw) for v in kube_api.objects[key].history if v is not None] if key in kube_api.objects else []


@pytest.mark.parametrize("seed", SEEDS)
async def test_lifecycles_survive_api_faults(seed, cluster: Cluster, kube_api: KubeAPIServer, audit, caplog, capsys):
    with capsys.disabled():
        print(f"\nfault test: seed={seed} (replay: WORKLOAD_FAULT_SEEDS={seed})")
    caplog.set_level(logging.INFO, logger="workload_operator")
    errors_before = {code: api_errors(code) for code in ("409", "422", "500", "503")}
    conflicts_before = conflicts()

    faults = kube_api.faults = Faults(seed=seed, rate=0.2, codes=(409, 422, 500, 503), slow=(0.0, 0.3), drop_watch=0.1)
    names = {kind: [f"{kind}-{i}" for i in range(PER_KIND)] for kind in EXPECTED}
    await asyncio.gather(
        *(batch(cluster, name, 0) for name in names["ok"]),
        *(batch(cluster, name, 3) for name in names["bad"]),
        *(gang(cluster, name) for name in names["gang"]),
        *(service(cluster, name) for name in names["svc"]),
        *(deleted_while_running(cluster, name) for name in names["doomed"]),
    )
    kube_api.faults = None  # the API is healthy again: everything must settle

    workloads = kube_api.resource("ml.lifecycle.dev", "v1alpha1", "workloads")
    pods = kube_api.resource("", "v1", "pods")
    for kind, (final, path) in EXPECTED.items():
        for name in names[kind]:
            if kind == "doomed":
                await cluster.wait_gone(name, timeout=WAIT)
                workload = stored(kube_api, workloads, name)[-1]  # as it was when its finalizer was released
            else:
                workload = await cluster.wait_state(name, final, timeout=WAIT)
            status = workload["status"]
            edges = assert_valid_history(workload)
            assert edges == path, f"{name}: {edges}"
            # The audit line follows the status write it reports (in the operator's thread): let it catch up.
            logged = await wait_for(lambda: _at_least(audit.transitions(name), len(edges)), f"{name}'s audit lines")
            assert logged == edges, f"{name}: a transition lost or recorded twice"
            assert status["state"] == final
            if kind == "bad":
                assert status["reason"] == "ExitCode" and status["run"]["exitCode"] == 3
            if kind in ("ok", "gang"):
                assert status["run"]["result"] == {"loss": 0.1}
            # One attempt: only its pods (`<name>-1`, or `<name>-1-<i>` in a gang), each created once (all its
            # stored versions have one uid).
            assert status["attempts"] == 1
            made = {pod: len({v["metadata"]["uid"] for v in stored(kube_api, pods, pod)})
                    for attempt in (1, 2) for pod in pod_names(kind, name, attempt)}
            assert made == {pod: attempt == 1 for attempt in (1, 2) for pod in pod_names(kind, name, attempt)}, made
            if kind in ("svc", "doomed"):
                await cluster.wait_pod_gone(f"{name}-1", timeout=WAIT)

    # Each kind of fault happened, and every one was seen, counted and handled as it should be.
    injected = {kind: faults.count(kind) for kind in FAULT_KINDS}
    with capsys.disabled():
        print(f"fault test: seed={seed}: injected {injected}")
    assert all(injected.values()), f"not every kind of fault was injected: {injected}"
    for code in ("500", "503"):  # each one an API error of the operator's own client, counted once
        assert api_errors(code) - errors_before[code] == injected[code], code
    for code in ("409", "422"):  # plus those a stale view or a repeated create really caused
        assert api_errors(code) - errors_before[code] >= injected[code], code
    assert conflicts() - conflicts_before >= injected["409"] + injected["422"]
    # A 5xx on a status, finalizer or pod write is retried (and said so); on an Event it is logged and let go.
    on_events = sum(1 for f in faults.injected if f.kind in ("500", "503") and f.path.endswith("/events"))
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("workload_operator")]
    # A gang's pods are created at once: 5xx answers to one batch of pod creations make one retry.
    on_pods = sum(1 for f in faults.injected if f.kind in ("500", "503") and (f.method, f.path) == (
        "POST", f"/api/v1/namespaces/{cluster.namespace}/pods"))
    retried = sum("retrying" in m for m in messages)
    assert injected["500"] + injected["503"] - on_events - on_pods <= retried <= injected["500"] + injected["503"] - on_events
    assert sum("could not post the event" in m for m in messages) == on_events
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures


async def test_a_lagging_pod_watch_does_not_make_the_operator_spin(cluster: Cluster, kube_api: KubeAPIServer, audit,
                                                                   caplog):
    """Found by the test above: a decision that only deletes pods was decided again at once, from the same pod
    index, and deleted again, until the index caught up or MAX_STEPS turned it into a PermanentError. Here the
    pod watch ends after each event and takes 0.5 s to come back, and the workload is deleted in that window."""
    await cluster.start_running("lagged")

    def pod_watch(request) -> bool:
        return request.url.path == f"/api/v1/namespaces/{cluster.namespace}/pods" and request.params.get("watch") == "true"

    faults = kube_api.faults = Faults(seed=0, rate=1.0, codes=(), slow=(0.5, 0.5), drop_watch=1.0, only=pod_watch)
    await cluster.set_pod_status("lagged-1", {"conditions": [{"type": "PodScheduled", "status": "True"}]})
    await wait_for(lambda: _at_least([f for f in faults.injected if f.kind == "drop"], 1), "the pod watch to drop")
    await cluster.delete_workload("lagged")  # the operator sees this at once; the pod's deletion 0.5 s later
    await cluster.wait_gone("lagged")
    kube_api.faults = None

    assert len(kube_api.writes(resource="pods", name="lagged-1", methods=("DELETE",))) == 1
    assert audit.transitions("lagged")[-1] == ("running", "cancelled")
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures


async def test_a_reconcile_out_of_retries_tries_again_by_itself(cluster: Cluster, kube_api: KubeAPIServer, audit,
                                                                monkeypatch, caplog):
    """Every retry of one status write fails, and no event follows (the pod has exited for good): the
    operator must not wait for one. It tries again on a timer, and the transition is made once."""
    # A tenth again of the quick_retries fixture's (a hundredth of the real ones): eight failures, then 0.3 s.
    monkeypatch.setattr(handlers, "RETRY_DELAYS", tuple(delay / 10 for delay in handlers.RETRY_DELAYS))
    await cluster.start_running("patient")
    refused = kube_api.inject_error(503, resource="workloads", subresource="status", name="patient",
                                    count=len(handlers.RETRY_DELAYS) + 1)
    await cluster.pod_exited("patient-1", 0, message="{}")

    workload = await cluster.wait_state("patient", "completed")
    assert len(list(refused)) == len(handlers.RETRY_DELAYS) + 1
    edges = assert_valid_history(workload)
    assert edges == EXPECTED["ok"][1]
    assert await wait_for(lambda: _at_least(audit.transitions("patient"), len(edges)), "the audit lines") == edges
    assert any("trying again in" in r.getMessage() for r in caplog.records)
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures
