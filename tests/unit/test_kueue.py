"""A Workload that names a Kueue LocalQueue: its pods as Kueue's plain-pod integration reads them, and its lifecycle
as Kueue decides (pods held by Kueue's scheduling gates, preemption). The pods here are shaped as Kueue v0.17.0
leaves them (sigs.k8s.io/kueue pkg/controller/jobs/pod: its gates, its TerminationTarget condition)."""

from __future__ import annotations

import datetime
from typing import Any

from workload_operator.lifecycle import State, WorkloadStatus, apply_transition
from workload_operator.lifecycle.decide import (
    FINALIZER, NOTHING, CreatePod, CreateService, DeletePod, Policy, WorkloadView, decide,
)
from workload_operator.lifecycle.gang import pod_name
from workload_operator.lifecycle.pods import summarize_pod
from workload_operator.lifecycle.queue import standings
from workload_operator.manifests import pod_group_name, pod_manifest

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
GATES = [{"name": "kueue.x-k8s.io/admission"}, {"name": "kueue.x-k8s.io/topology"}]


def view(path: list[str], *, reason: str = "Test", attempts: int = 0, evictions: int = 0, replicas: int = 4,
         name: str = "train", uid: str = "u-1", queue: str | None = "gpus", **spec: Any) -> WorkloadView:
    status = WorkloadStatus()
    for state in path:
        status = apply_transition(status, state, reason=reason, now=NOW - datetime.timedelta(minutes=1))
    status = status.model_copy(update={"attempts": attempts, "evictions": evictions})
    return WorkloadView.from_body({
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "generation": 1, "resourceVersion": "7",
                     "finalizers": [FINALIZER], "creationTimestamp": "2026-12-06T11:00:00Z"},
        "spec": {"image": "trainer", "replicas": replicas, **({"queueName": queue} if queue else {}), **spec},
        "status": status.model_dump(mode="json", by_alias=True, exclude_none=True),
    })


def pod(index: int, *, attempt: int = 1, gated: bool = False, phase: str = "Pending", running: bool = False,
        evicted: bool = False) -> Any:
    status: dict[str, Any] = {"phase": phase}
    if gated:  # as Kubernetes reports a gated pod
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                                 "message": "Scheduling is blocked due to non-empty scheduling gates"}]
    if running:
        status["containerStatuses"] = [{"name": "main", "state": {"running": {"startedAt": "2026-12-06T11:59:00Z"}}}]
    meta: dict[str, Any] = {"name": pod_name("train", attempt, index), "uid": f"p-{attempt}-{index}"}
    if evicted:  # Kueue's pod reconciler: the condition first, then a DELETE (its finalizer holds the pod)
        status.setdefault("conditions", []).append({"type": "TerminationTarget", "status": "True",
                                                    "reason": "WorkloadEvictedDueToPreempted"})
        meta["deletionTimestamp"] = "2026-12-06T12:00:30Z"
    return summarize_pod({"metadata": meta, "spec": {"schedulingGates": GATES if gated else []}, "status": status})


def gang(**how: Any) -> list[Any]:
    return [pod(index, **how) for index in range(4)]


def test_the_pods_carry_the_pod_group_kueue_reads_a_new_one_per_attempt():
    workload = view(["queued"], attempts=1)
    assert workload.spec is not None
    first = pod_manifest(workload, workload.spec, attempt=2, index=3)["metadata"]
    assert first["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    assert first["labels"]["kueue.x-k8s.io/pod-group-name"] == "train-2"
    assert first["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "4"
    assert first["annotations"]["kueue.x-k8s.io/retriable-in-group"] == "false"
    long = view(["queued"], name="x" * 62)
    assert pod_group_name(long, 10) == "wl-u-1-10"  # a label value is 63 characters at most


def test_without_a_queue_name_nothing_of_kueue_is_set():
    workload = view(["queued"], queue=None)
    assert workload.spec is not None
    meta = pod_manifest(workload, workload.spec, attempt=1, index=0)["metadata"]
    assert not [key for key in [*meta["labels"], *meta.get("annotations", {})] if key.startswith("kueue.x-k8s.io/")]


def test_the_attempts_pods_are_made_while_queued_and_it_stays_queued_waiting_for_admission():
    decision = decide(view(["queued"]), [], NOW)
    assert decision.actions == (CreateService(headless=True), *(CreatePod(1, index) for index in range(4)))
    assert decision.status is not None
    assert decision.status.state is State.QUEUED and decision.status.attempts == 1
    assert (decision.status.reason, decision.status.message) == (
        "WaitingForAdmission", "waiting for admission by Kueue in LocalQueue gpus; 4 pods created: train-1-0 … train-1-3")


def test_while_kueue_holds_the_pods_it_goes_nowhere_and_writes_nothing():
    waiting = view(["queued"], reason="WaitingForAdmission", attempts=1)
    assert decide(waiting, gang(gated=True), NOW) == decide(waiting, [pod(0, gated=True), *gang()[1:]], NOW) == NOTHING


def test_admission_moves_it_to_preparing_where_the_timeout_starts():
    waiting = view(["queued"], reason="WaitingForAdmission", attempts=1, preparingTimeoutSeconds=60)
    decision = decide(waiting, gang(), NOW)
    assert decision.actions == ()
    assert decision.status is not None
    assert (decision.status.state, decision.status.reason) == (State.PREPARING, "Admitted")
    assert decision.status.history[-1].at == NOW


def test_the_operators_own_limit_neither_holds_nor_counts_a_workload_kueue_admits():
    policy = Policy(max_active=1)
    ours = view(["queued"], queue=None, uid="ours")
    kueues = [view(["queued", "preparing", "running"], uid="k-running", attempts=1), view(["queued"], uid="k-queued")]
    placed = standings([ours, *kueues], policy)
    assert set(placed) == {"ours"} and placed["ours"].admitted
    assert decide(kueues[1], [], NOW, policy=policy, admission=None).actions  # its pods are made at once


def test_a_preempted_attempt_is_orphaned_and_spends_none_of_the_users_attempts():
    running = view(["queued", "preparing", "running"], attempts=1, maxAttempts=1)
    orphaned = decide(running, gang(phase="Running", running=True, evicted=True), NOW).status
    assert orphaned is not None
    assert (orphaned.state, orphaned.reason, orphaned.evictions) == (State.ORPHANED, "EvictedByKueue", 1)
    assert orphaned.message.startswith("pod train-1-0: Kueue stopped the attempt (Preempted)")

    requeued = decide(view(["queued", "preparing", "running", "orphaned"], reason="EvictedByKueue", attempts=1,
                           evictions=1, maxAttempts=1), [], NOW).status
    assert requeued is not None and (requeued.state, requeued.reason) == (State.QUEUED, "RequeuedByKueue")

    # maxAttempts is 1 and one attempt was made: Kueue's, so the next is made, at once (no backoff of ours), once
    # the preempted pods are gone (Kueue's finalizer holds them a moment).
    again = view(["queued", "preparing", "running", "orphaned", "queued"], reason="RequeuedByKueue", attempts=1,
                 evictions=1, maxAttempts=1)
    going = decide(again, gang(phase="Running", running=True, evicted=True), NOW)
    assert going.status is None and going.actions == ()  # being deleted already: wait for them
    started = decide(again, [], NOW)
    assert started.status is not None and started.status.attempts == 2
    assert CreatePod(2, 0) in started.actions and started.status.reason == "WaitingForAdmission"


def test_a_lost_worker_still_spends_an_attempt():
    running = view(["queued", "preparing", "running"], attempts=1, maxAttempts=1)
    pods = gang(phase="Running", running=True)
    pods[2] = summarize_pod({"metadata": {"name": pod_name("train", 1, 2), "uid": "p", "deletionTimestamp": "x"},
                             "status": {"phase": "Running"}})
    failed = decide(running, pods, NOW).status
    assert failed is not None and (failed.state, failed.reason) == (State.FAILED, "RetryLimitExceeded")


def test_cancelled_while_held_deletes_the_pods_then_ends():
    waiting = view(["queued"], reason="WaitingForAdmission", attempts=1, cancel=True)
    deleting = decide(waiting, gang(gated=True), NOW)
    assert deleting.actions == tuple(DeletePod(pod_name("train", 1, i), f"p-1-{i}") for i in range(4))
    ended = decide(waiting, [], NOW).status
    assert ended is not None and ended.state is State.CANCELLED


def test_a_held_pod_deleted_by_someone_else_starts_the_attempt_over_in_a_new_group():
    waiting = view(["queued"], reason="WaitingForAdmission", attempts=1)
    pods = gang(gated=True)[:3]  # one is gone
    assert decide(waiting, pods, NOW).actions == tuple(
        DeletePod(pod_name("train", 1, i), f"p-1-{i}") for i in range(3))
    restarted = decide(waiting, [], NOW)
    assert restarted.status is not None and restarted.status.attempts == 2
    assert CreatePod(2, 3) in restarted.actions


def test_kueues_gates_and_termination_target_are_read_off_the_pod():
    held = pod(0, gated=True)
    assert held.gates == ("kueue.x-k8s.io/admission", "kueue.x-k8s.io/topology")
    assert pod(0, evicted=True).disruption == "WorkloadEvictedDueToPreempted"


def test_scheduling_gated_is_not_a_reason_once_the_gates_are_lifted():
    admitted = summarize_pod({"metadata": {"name": "p"}, "spec": {"schedulingGates": []}, "status": {
        "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}})
    assert admitted.unscheduled == "" and pod(0, gated=True).unscheduled == "SchedulingGated"
