"""decide(): one step at a time from (workload, pod, now), as a table of scenarios."""

import datetime

import pytest

from workload_operator.lifecycle import State, WorkloadStatus, apply_transition, can_transition
from workload_operator.lifecycle.decide import (
    FINALIZER, AddFinalizer, CreatePod, DeletePod, DeleteRetiredPods, RemoveFinalizer, RetirePod, WorkloadView, decide,
)
from workload_operator.lifecycle.gang import failure_of, pod_name
from workload_operator.lifecycle.pods import summarize_pod
from workload_operator.lifecycle.status import RunInfo

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
PATHS = {
    "queued": ["queued"],
    "preparing": ["queued", "preparing"],
    "running": ["queued", "preparing", "running"],
    "collecting": ["queued", "preparing", "running", "collecting"],
    "completed": ["queued", "preparing", "running", "collecting", "completed"],
    "failed": ["queued", "failed"],
    "cancelled": ["queued", "cancelled"],
    "orphaned": ["queued", "preparing", "running", "orphaned"],
    "serving": ["queued", "preparing", "running", "serving"],
    "stopping": ["queued", "preparing", "running", "serving", "stopping"],
}


def status_in(state: str | None, attempts: int | None = None) -> WorkloadStatus:
    """A status that reached ``state`` along a valid path; by default one attempt once a pod was made."""
    status = WorkloadStatus()
    for step in PATHS.get(state, []):
        status = apply_transition(status, step, reason="Test", now=NOW)
    if attempts is None:
        attempts = 0 if state in (None, "queued") else 1
    run = RunInfo(pod=pod_name("train", attempts)) if attempts else None
    return status.model_copy(update={"attempts": attempts, "run": run})


def view(state: str | None = None, *, spec: dict | None = None, deleting: bool = False, finalizer: bool = True,
         attempts: int | None = None) -> WorkloadView:
    body = {
        "metadata": {"name": "train", "namespace": "ml", "uid": "u-1", "generation": 1, "resourceVersion": "7",
                     "finalizers": [FINALIZER] if finalizer else [],
                     **({"deletionTimestamp": "2026-11-23T12:00:00Z"} if deleting else {})},
        "spec": {"image": "busybox", **(spec or {})},
        "status": status_in(state, attempts).model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return WorkloadView.from_body(body)


def pod(phase="Pending", *, attempt=1, main=None, reason="", deleting=False):
    """A pod as the kubelet reports it; ``main`` is the main container's state."""
    status = {"phase": phase, "reason": reason}
    if main is not None:
        status["containerStatuses"] = [{"name": "main", "state": main}]
    meta = {"name": pod_name("train", attempt), **({"deletionTimestamp": "x"} if deleting else {})}
    return summarize_pod({"metadata": meta, "status": status})


RUNNING = {"running": {"startedAt": "2026-11-23T11:00:00Z"}}


def exited(code, reason="Completed", message=""):
    return {"terminated": {"exitCode": code, "reason": reason, "message": message,
                           "startedAt": "2026-11-23T11:00:00Z", "finishedAt": "2026-11-23T11:30:00Z"}}


# (id, view, pod, expected state after the step or None, expected reason, expected actions)
SCENARIOS = [
    ("new-gets-finalizer-first", view(None, finalizer=False), None, None, None, (AddFinalizer(),)),
    ("new-is-queued", view(None), None, "queued", "Created", ()),
    ("queued-creates-pod", view("queued"), None, "preparing", "PodCreated", (CreatePod(1),)),
    ("queued-invalid-spec-fails", view("queued", spec={"maxAttempts": 0}), None, "failed", "InvalidSpec", ()),
    ("queued-out-of-attempts", view("queued", spec={"maxAttempts": 1}, attempts=1), None, "failed", "RetryLimitExceeded", ()),
    ("preparing-pending-waits", view("preparing"), pod("Pending"), None, None, ()),
    ("preparing-started", view("preparing"), pod("Running", main=RUNNING), "running", "Started", ()),
    ("preparing-jump-to-succeeded", view("preparing"), pod("Succeeded", main=exited(0)), "running", "Started", ()),
    ("preparing-failed-pod", view("preparing"), pod("Failed", main=exited(2, "Error")), "failed", "ExitCode", ()),
    ("preparing-pod-vanished", view("preparing"), None, "preparing", "PodRecreated", (CreatePod(2),)),
    ("running-waits", view("running"), pod("Running", main=RUNNING), None, None, ()),
    ("running-exit-0", view("running"), pod("Succeeded", main=exited(0)), "collecting", "Succeeded", ()),
    ("running-exit-0-sidecar-runs", view("running"), pod("Running", main=exited(0)), "collecting", "Succeeded", ()),
    ("running-exit-3", view("running"), pod("Failed", main=exited(3, "Error")), "failed", "ExitCode", ()),
    ("running-oom", view("running"), pod("Failed", main=exited(137, "OOMKilled")), "failed", "OOMKilled", ()),
    ("running-deadline", view("running"), pod("Failed", reason="DeadlineExceeded"), "failed", "DeadlineExceeded", ()),
    ("running-pod-lost", view("running"), None, "orphaned", "PodDeleted", ()),
    ("running-pod-lost-no-attempts-left", view("running", spec={"maxAttempts": 1}), None, "failed", "RetryLimitExceeded", ()),
    ("collecting-collects", view("collecting"), pod("Succeeded", main=exited(0)), "completed", "Completed", ()),
    ("orphaned-requeues", view("orphaned"), None, "queued", "Requeued", ()),
    ("cancel-running-deletes-pod", view("running", spec={"cancel": True}), pod("Running", main=RUNNING), None, None,
     (DeletePod("train-1"),)),
    ("cancel-waits-for-terminating-pod", view("running", spec={"cancel": True}), pod("Running", deleting=True), None, None, ()),
    ("cancel-records-cancelled", view("running", spec={"cancel": True}), None, "cancelled", "Cancelled", ()),
    ("cancel-queued-at-once", view("queued", spec={"cancel": True}), None, "cancelled", "Cancelled", ()),
    ("cancel-orphaned-requeues-first", view("orphaned", spec={"cancel": True}), None, "queued", "Cancelling", ()),
    ("delete-running-deletes-pod", view("running", deleting=True), pod("Running", main=RUNNING), None, None,
     (DeletePod("train-1"),)),
    ("delete-records-deleted", view("running", deleting=True), None, "cancelled", "Deleted", ()),
    ("delete-finished-releases", view("completed", deleting=True), pod("Succeeded", main=exited(0)), None, None,
     (DeletePod("train-1"), RemoveFinalizer())),
    ("delete-cancelled-releases", view("cancelled", deleting=True), None, None, None,
     (DeleteRetiredPods(("train-1",)), RemoveFinalizer())),  # its pod not shown: retired, maybe
    ("delete-without-our-finalizer", view("running", deleting=True, finalizer=False), None, "cancelled", "Deleted", ()),
    ("completed-retires-its-pod", view("completed"), pod("Succeeded", main=exited(0)), None, None,
     (RetirePod("train-1"),)),
    ("completed-stays", view("completed"), None, None, None, ()),
    ("cancel-on-completed-changes-nothing", view("completed", spec={"cancel": True}), None, None, None, ()),
]


@pytest.mark.parametrize(("case", "workload", "the_pod", "to_state", "reason", "actions"), SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_decide(case, workload, the_pod, to_state, reason, actions):
    decision = decide(workload, (the_pod,) if the_pod is not None else (), NOW)
    if to_state is None:
        assert decision.status is None
    else:
        assert decision.status is not None
        assert decision.status.state == to_state
        assert decision.status.reason == reason
        if to_state != workload.status.state:
            assert can_transition(workload.status.state, to_state)
            assert decision.status.history[-1].at == NOW
    assert decision.actions == actions


def test_the_pod_of_the_next_attempt_is_created_and_committed_in_one_step():
    decision = decide(view("queued"), (), NOW)
    assert decision.status.attempts == 1
    assert decision.status.run.pod == "train-1"
    assert decision.actions == (CreatePod(1),)


def test_a_recreated_pod_keeps_the_state_and_counts_the_attempt():
    decision = decide(view("preparing", attempts=1), (), NOW)
    assert decision.status.state == State.PREPARING
    assert decision.status.attempts == 2 and decision.status.run.pod == "train-2"
    assert decision.status.transitions == view("preparing").status.transitions  # not a transition


def test_the_run_records_exit_code_times_and_the_json_result():
    done = pod("Succeeded", main=exited(0, message='{"accuracy": 0.93, "epochs": 3}'))
    decision = decide(view("collecting"), (done,), NOW)
    run = decision.status.run
    assert run.pod == "train-1" and run.exit_code == 0
    assert run.result == {"accuracy": 0.93, "epochs": 3}
    assert run.started_at == datetime.datetime(2026, 11, 23, 11, 0, tzinfo=datetime.UTC)
    assert run.finished_at == datetime.datetime(2026, 11, 23, 11, 30, tzinfo=datetime.UTC)


def test_a_text_result_is_kept_as_text_and_capped():
    decision = decide(view("collecting"), (pod("Succeeded", main=exited(0, message="ok " * 3000)),), NOW)
    assert isinstance(decision.status.run.result, str) and len(decision.status.run.result) <= 4096


def test_a_failure_message_carries_the_last_words():
    failed = pod("Failed", main=exited(1, "Error", message="Traceback ...\nValueError: bad lr\n"))
    reason, message = failure_of(failed)
    assert reason == "ExitCode"
    assert message == "the main container exited with code 1: Traceback ...\nValueError: bad lr"


def test_a_jump_is_walked_one_edge_at_a_time():
    workload, done = view("preparing"), pod("Succeeded", main=exited(0, message="42"))
    states = []
    while (decision := decide(workload, (done,), NOW)).status is not None:
        workload = WorkloadView(**{**workload.__dict__, "status": decision.status})
        states.append(str(decision.status.state))
    assert states == ["running", "collecting", "completed"]
    assert workload.status.run.result == 42
    assert decision.actions == (RetirePod("train-1"),)  # finished, its result recorded: the pod leaves the watch


def test_stopping_removes_a_pod_the_status_never_named():
    # The pod of attempt 1 was created, then the operator died before writing "preparing"; then a delete came.
    uncommitted = pod("Pending", attempt=1)
    deleted = view("queued", deleting=True)
    assert decide(deleted, (uncommitted,), NOW).actions == (DeletePod("train-1"),)
    assert decide(deleted, (), NOW).status.state == State.CANCELLED  # once it is gone
    released = view("cancelled", deleting=True)
    assert decide(released, (uncommitted,), NOW).actions == (DeletePod("train-1"), RemoveFinalizer())
