"""Issue-5 rules of decide(): worker loss, backoff, admission, services, deadlines, TTL, nothing stuck."""

import datetime

import pytest

from tests.unit.test_decide import NOW, RUNNING, exited, pod, view
from workload_operator.lifecycle import ConditionStatus, ConditionType, State
from workload_operator.lifecycle.decide import (
    Admission, CreatePod, CreateService, CreationRefusal, DeletePod, DeleteRetiredPods, DeleteService, DeleteWorkload,
    Policy, RemoveFinalizer, creation_failed, decide,
)
from workload_operator.lifecycle.gang import failure_of, loss_of
from workload_operator.lifecycle.pods import summarize_pod

SERVICE = {"type": "service", "port": 8888, "readinessPath": "/api"}


def later(seconds: float) -> datetime.datetime:
    return NOW + datetime.timedelta(seconds=seconds)


def k8s_pod(phase="Running", *, reason="", conditions=(), main=RUNNING, deleting=False):
    meta = {"name": "train-1", **({"deletionTimestamp": "x"} if deleting else {})}
    status = {"phase": phase, "reason": reason, "conditions": [dict(c) for c in conditions],
              "containerStatuses": [{"name": "main", "state": main}]}
    return summarize_pod({"metadata": meta, "status": status})


# --- loss versus failure: the classification table --------------------------------------------

LOSS_TABLE = [
    ("deleted", None, ("PodDeleted", None)),
    ("being-deleted", k8s_pod(deleting=True), ("PodDeleted", None)),
    ("evicted", k8s_pod("Failed", reason="Evicted"), ("Evicted", None)),
    ("preempted", k8s_pod(conditions=[{"type": "DisruptionTarget", "status": "True",
                                       "reason": "PreemptionByScheduler"}]), ("PreemptionByScheduler", None)),
    ("node-unknown", k8s_pod(conditions=[{"type": "Ready", "status": "Unknown"}]), ("NodeLost", None)),
    ("node-lost", k8s_pod(reason="NodeLost", conditions=[{"type": "Ready", "status": "False"}]), ("NodeLost", None)),
    ("exit-code", k8s_pod("Failed", main=exited(2, "Error")), (None, "ExitCode")),
    ("oom", k8s_pod("Failed", main=exited(137, "OOMKilled")), (None, "OOMKilled")),
    ("deadline", k8s_pod("Failed", reason="DeadlineExceeded"), (None, "DeadlineExceeded")),
    ("healthy", k8s_pod(conditions=[{"type": "Ready", "status": "True"}]), (None, None)),
    ("disruption-false", k8s_pod(conditions=[{"type": "DisruptionTarget", "status": "False"}]), (None, None)),
]


@pytest.mark.parametrize(("case", "the_pod", "expected"), LOSS_TABLE, ids=[c[0] for c in LOSS_TABLE])
def test_loss_or_failure(case, the_pod, expected):
    loss = loss_of(the_pod)
    failure = failure_of(the_pod) if the_pod is not None and loss is None else None
    assert ((loss or (None,))[0], (failure or (None,))[0]) == expected


@pytest.mark.parametrize("state", ["running", "serving"])
def test_a_lost_worker_is_orphaned_and_its_pod_cleaned_up(state):
    spec = SERVICE if state == "serving" else {}
    evicted = k8s_pod("Failed", reason="Evicted")
    decision = decide(view(state, spec=spec), (evicted,), NOW)
    assert (decision.status.state, decision.status.reason) == (State.ORPHANED, "Evicted")
    assert decision.actions == ()  # written first: the pod goes next, from the queue
    requeued = decide(view_with(view(state, spec=spec), decision.status), (evicted,), NOW)
    assert (requeued.status.state, requeued.actions) == (State.QUEUED, ())
    cleaned = decide(view_with(view(state, spec=spec), requeued.status), (evicted,), NOW)
    assert cleaned.actions == (DeletePod("train-1"),) and cleaned.status is None


def test_an_oom_is_a_failure_not_a_loss():
    decision = decide(view("running"), (k8s_pod("Failed", main=exited(137, "OOMKilled")),), NOW)
    assert (decision.status.state, decision.status.reason) == (State.FAILED, "OOMKilled")


def test_a_lost_worker_past_the_retry_limit_fails():
    decision = decide(view("serving", spec={**SERVICE, "maxAttempts": 1}), (), NOW)
    assert (decision.status.state, decision.status.reason) == (State.FAILED, "RetryLimitExceeded")


# --- backoff -----------------------------------------------------------------------------------

def test_a_requeued_workload_waits_out_an_exponential_capped_backoff():
    policy = Policy(backoff_base=10, backoff_cap=60)
    assert [policy.backoff(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    orphaned = view("orphaned", attempts=2)
    requeued = decide(orphaned, (), NOW, policy=policy)
    assert (requeued.status.state, requeued.status.reason) == (State.QUEUED, "Requeued")
    queued = view_with(orphaned, requeued.status)
    waiting = decide(queued, (), later(19), policy=policy)
    assert not waiting and waiting.recheck_at == later(20)
    admitted = decide(queued, (), later(20), policy=policy)
    assert admitted.status.state == State.PREPARING and admitted.actions == (CreatePod(3),)


def view_with(base, status):
    return type(base)(**{**base.__dict__, "status": status})


# --- admission ---------------------------------------------------------------------------------

def test_a_queued_workload_says_why_it_waits_and_its_position():
    full = Admission(admitted=False, position=2, queued=3, active=4, limit=4)
    decision = decide(view("queued"), (), NOW, admission=full)
    assert decision.status.state == State.QUEUED and decision.actions == ()
    assert decision.status.reason == "WaitingForCapacity"
    assert decision.status.message == "position 2 of 3 in the queue; 4 of 4 workloads active"
    assert not decide(view_with(view("queued"), decision.status), (), NOW, admission=full)  # said once


def test_an_admitted_workload_starts():
    decision = decide(view("queued"), (), NOW, admission=Admission(True, 1, 1, 3, 4))
    assert decision.status.state == State.PREPARING


# --- services ----------------------------------------------------------------------------------

def ready_pod(ready=True, main=RUNNING):
    return k8s_pod(conditions=[{"type": "Ready", "status": "True" if ready else "False"}], main=main)


def test_a_service_gets_its_service_and_endpoint_with_the_pod():
    decision = decide(view("queued", spec=SERVICE), (), NOW)
    assert decision.actions == (CreateService(), CreatePod(1))
    assert decision.status.endpoint == "train.ml.svc:8888"


def test_a_service_serves_once_ready():
    assert not decide(view("running", spec=SERVICE), (ready_pod(False),), NOW)
    decision = decide(view("running", spec=SERVICE), (ready_pod(True),), NOW)
    assert (decision.status.state, decision.status.reason) == (State.SERVING, "Ready")
    assert decision.status.condition(ConditionType.READY).status == ConditionStatus.TRUE


def test_a_batch_workload_ignores_readiness():
    assert not decide(view("running"), (ready_pod(True),), NOW)


def test_readiness_flaps_without_leaving_serving():
    serving = view("serving", spec=SERVICE)
    lost = decide(serving, (ready_pod(False),), NOW)
    assert lost.status.state == State.SERVING and lost.status.transitions == serving.status.transitions
    assert lost.status.condition(ConditionType.READY).status == ConditionStatus.FALSE
    assert lost.status.reason == "NotReady"
    back = decide(view_with(serving, lost.status), (ready_pod(True),), later(5))
    assert back.status.condition(ConditionType.READY).status == ConditionStatus.TRUE
    assert back.status.reason == "Ready"
    assert not decide(view_with(serving, back.status), (ready_pod(True),), later(6))


def test_cancelling_a_service_stops_it_gracefully():
    serving = view("serving", spec={**SERVICE, "cancel": True})
    stopping = decide(serving, (ready_pod(),), NOW)
    assert (stopping.status.state, stopping.actions) == (State.STOPPING, ())
    asked = decide(view_with(serving, stopping.status), (ready_pod(),), NOW)  # stopping asks the pod to stop
    assert (asked.status, asked.actions) == (None, (DeletePod("train-1"),))


@pytest.mark.parametrize(("exit_code", "state"), [(0, State.COMPLETED), (143, State.COMPLETED), (1, State.FAILED)])
def test_a_stopping_service_ends_by_how_it_exited(exit_code, state):
    stopping = view("stopping", spec={**SERVICE, "cancel": True})
    decision = decide(stopping, (k8s_pod("Failed" if exit_code else "Succeeded", main=exited(exit_code)),), NOW)
    assert decision.status.state == state


def test_a_stopping_service_whose_pod_is_gone_completed():
    assert decide(view("stopping", spec=SERVICE), (), NOW).status.state == State.COMPLETED


def test_cancelling_before_serving_is_cancelled():
    assert decide(view("preparing", spec={**SERVICE, "cancel": True}), (), NOW).status.state == State.CANCELLED


def test_deleting_a_finished_service_removes_its_service():
    decision = decide(view("completed", spec=SERVICE, deleting=True), (), NOW)
    assert decision.actions == (DeleteRetiredPods(("train-1",)), DeleteService(), RemoveFinalizer())


# --- deadlines, TTL, nothing stuck --------------------------------------------------------------

def running_since(seconds_ago: float, **spec):
    base = view("running", spec=spec)
    return view_with(base, base.status.model_copy(update={"start_time": NOW - datetime.timedelta(seconds=seconds_ago)}))


def test_the_active_deadline_fails_the_workload_and_kills_the_pod():
    running = running_since(61, activeDeadlineSeconds=60)
    decision = decide(running, (pod("Running", main=RUNNING),), NOW)
    assert (decision.status.state, decision.status.reason, decision.actions) == (State.FAILED, "DeadlineExceeded", ())
    assert decision.status.pods.active == 0  # counted as gone: the finished workload deletes it next
    assert decide(view_with(running, decision.status), (pod("Running", main=RUNNING),), NOW).actions == (
        DeletePod("train-1"),)


def test_before_the_deadline_the_operator_checks_again_at_it():
    decision = decide(running_since(10, activeDeadlineSeconds=60), (pod("Running", main=RUNNING),), NOW)
    assert not decision and decision.recheck_at == later(50)


def test_the_ttl_deletes_a_finished_workload_when_it_expires():
    done = view("completed", spec={"ttlSecondsAfterFinished": 30})
    finished_at = done.status.completion_time
    assert decide(done, (), finished_at + datetime.timedelta(seconds=10)).recheck_at == finished_at + datetime.timedelta(seconds=30)
    assert decide(done, (), finished_at + datetime.timedelta(seconds=30)).actions == (DeleteWorkload(),)


def test_a_waiting_pod_shows_why_and_times_out():
    pulling = pod("Pending", main={"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}})
    preparing = view("preparing", spec={"preparingTimeoutSeconds": 120})
    noted = decide(preparing, (pulling,), NOW)
    assert (noted.status.state, noted.status.reason, noted.status.message) == (
        State.PREPARING, "ImagePullBackOff", "pull access denied")
    assert noted.recheck_at == preparing.status.history[-1].at + datetime.timedelta(seconds=120)
    timed_out = decide(preparing, (pulling,), preparing.status.history[-1].at + datetime.timedelta(seconds=120))
    assert (timed_out.status.state, timed_out.status.reason) == (State.FAILED, "PreparingTimeout")
    assert decide(view_with(preparing, timed_out.status), (pulling,), NOW).actions == (DeletePod("train-1"),)


QUOTA = "pod ml/train-1 not created: pods \"train-1\" is forbidden: exceeded quota"


def test_a_pod_that_cannot_be_created_says_so_once_and_is_retried_later():
    queued = view("queued")
    first = creation_failed(queued, CreationRefusal.REFUSED, QUOTA, NOW)
    assert (first.status.state, first.status.reason, first.status.attempts) == (State.QUEUED, "PodCreationFailed", 0)
    assert first.recheck_at > NOW
    again = creation_failed(view_with(queued, first.status), CreationRefusal.REFUSED, QUOTA, NOW)
    assert again.status is None and again.recheck_at > NOW


def test_the_wait_after_a_refused_creation_grows_with_each_refusal_in_a_row():
    queued, policy = view("queued"), Policy(backoff_base=10, backoff_cap=300)
    waits = [creation_failed(queued, CreationRefusal.REFUSED, QUOTA, NOW, policy, failures=n).recheck_at - NOW
             for n in (1, 2, 3, 10, 5000)]
    assert [w.total_seconds() for w in waits] == [10, 20, 40, 300, 300]


def test_a_name_taken_by_someone_elses_object_waits_without_spending_an_attempt():
    preparing = view("preparing")
    message = "pod ml/train-2 already exists and is not this workload's; rename one of them"
    waiting = creation_failed(preparing, CreationRefusal.NAME_CONFLICT, message, NOW)
    assert (waiting.status.state, waiting.status.reason, waiting.status.message) == (State.PREPARING, "NameConflict", message)
    assert waiting.status.attempts == preparing.status.attempts and waiting.actions == ()
    assert waiting.recheck_at > NOW


@pytest.mark.parametrize("state", ["queued", "preparing"])
def test_an_object_the_api_server_finds_invalid_ends_the_workload(state):
    message = "pod ml/train-1 not created: Pod \"train-1\" is invalid: spec.containers[0].resources.requests[gpu]: Invalid value"
    failed = creation_failed(view(state), CreationRefusal.INVALID, message, NOW)
    assert (failed.status.state, failed.status.reason, failed.status.message) == (State.FAILED, "InvalidSpec", message)
    assert failed.recheck_at is None


# --- pods stuck terminating: every wait on a pod's deletion is bounded ---------------------------

def terminating(due: datetime.datetime, main=RUNNING):
    meta = {"name": "train-1", "uid": "p-1", "deletionTimestamp": due.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return summarize_pod({"metadata": meta, "status": {"phase": "Running", "containerStatuses": [
        {"name": "main", "state": main}]}})


def test_stopping_waits_for_a_terminating_pod_until_its_grace_period_and_the_margin():
    stopping, policy = view("stopping", spec=SERVICE), Policy(force_delete_after=30)
    pod = terminating(due=later(30))
    waiting = decide(stopping, (pod,), NOW, policy=policy)
    assert not waiting and waiting.recheck_at == later(60)
    gave_up = decide(stopping, (pod,), later(60), policy=policy)
    assert (gave_up.status.state, gave_up.status.reason) == (State.FAILED, "TerminationTimeout")
    assert gave_up.actions == (DeletePod("train-1", "p-1", force=True),)


def test_a_cancel_waiting_for_a_pod_that_never_goes_deletes_it_with_grace_zero():
    running, policy = view("running", spec={"cancel": True}), Policy(force_delete_after=30)
    pod = terminating(due=later(30))
    waiting = decide(running, (pod,), NOW, policy=policy)
    assert waiting.actions == () and waiting.recheck_at == later(60)
    forced = decide(running, (pod,), later(61), policy=policy)
    assert forced.actions == (DeletePod("train-1", "p-1", force=True),) and forced.status is None
    assert forced.recheck_at == later(91)  # not at once again: the delete needs a moment to show
    assert decide(running, (), later(62), policy=policy).status.state is State.CANCELLED


def test_no_pod_is_created_again_before_the_backoff_of_a_refusal_whatever_event_comes():
    queued = view("queued")
    waiting = decide(queued, (), NOW, create_not_before=later(10))
    assert not waiting and waiting.recheck_at == later(10)
    assert decide(queued, (), later(10), create_not_before=later(10)).actions == (CreatePod(1),)
    vanished = decide(view("preparing"), (), NOW, create_not_before=later(10))  # the recreate waits too
    assert not vanished and vanished.recheck_at == later(10)
    cancelled = decide(view("queued", spec={"cancel": True}), (), NOW, create_not_before=later(10))
    assert cancelled.status.state is State.CANCELLED  # a cancel does not wait for it
