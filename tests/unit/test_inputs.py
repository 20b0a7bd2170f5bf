"""Odd inputs to the core, one per finding: the kubelet's reasons, names at the limit, results that are not
storable JSON, a status edited by hand. Each ends in a status the CRD's schema accepts."""

import datetime
import json
import re

import pytest

from tests.unit.test_decide import NOW, RUNNING, exited, pod, view
from workload_operator.lifecycle import State, WorkloadStatus
from workload_operator.lifecycle.decide import (
    Policy, RECONCILE_FAILED, WorkloadView, decide, reconcile_failed,
)
from workload_operator.lifecycle.gang import NAME_LIMIT, failure_of, pod_name
from workload_operator.lifecycle.pods import RESULT_LIMIT, parse_result, summarize_pod
from workload_operator.lifecycle.reasons import KNOWN, OUT_OF_RESOURCES, status_reason
from workload_operator.lifecycle.status import REASON_PATTERN

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def valid(status: WorkloadStatus) -> WorkloadStatus:
    """The status as the API server would store it: validated again from its JSON (model_copy skips validation)."""
    return WorkloadStatus.model_validate(json.loads(json.dumps(
        status.model_dump(mode="json", by_alias=True, exclude_none=True), allow_nan=False)))


# --- reasons ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "message", "reason", "kept"), [
    ("OutOfnvidia.com/gpu", "Node didn't have enough resource: nvidia.com/gpu", OUT_OF_RESOURCES,
     "OutOfnvidia.com/gpu: Node didn't have enough resource: nvidia.com/gpu"),
    ("OutOfephemeral-storage", "", OUT_OF_RESOURCES, "OutOfephemeral-storage"),
    ("OutOfcpu", "no cpu", OUT_OF_RESOURCES, "OutOfcpu: no cpu"),
    ("DeadlineExceeded", "too slow", "DeadlineExceeded", "too slow"),
    ("Terminated", "Pod was terminated in response to imminent node shutdown.", "NodeShutdown",
     "Terminated: Pod was terminated in response to imminent node shutdown."),
    ("SomethingNew", "kept as it is", "SomethingNew", "kept as it is"),
    ("a reason with spaces!", "msg", "PodFailed", "a reason with spaces!: msg"),
    ("X" * 200, "", "PodFailed", "X" * 200),
    ("", "", "PodFailed", ""),
])
def test_a_kubelet_reason_becomes_a_status_reason_and_the_original_is_kept(raw, message, reason, kept):
    assert status_reason(raw, message, fallback="PodFailed") == (reason, kept)
    assert re.fullmatch(REASON_PATTERN, reason)


def test_every_known_reason_is_a_valid_status_reason():
    assert all(re.fullmatch(REASON_PATTERN, reason) for reason in KNOWN.values())


def test_a_pod_the_node_refused_for_a_gpu_fails_with_a_valid_status():
    refused = summarize_pod({"metadata": {"name": "train-1"}, "status": {
        "phase": "Failed", "reason": "OutOfnvidia.com/gpu", "message": "Node didn't have enough resource"}})
    assert failure_of(refused) == (OUT_OF_RESOURCES, "OutOfnvidia.com/gpu: Node didn't have enough resource")
    failed = decide(view("preparing"), (refused,), NOW)
    assert (valid(failed.status).state, failed.status.reason) == (State.FAILED, OUT_OF_RESOURCES)


def test_routine_steps_are_not_written_and_the_scheduler_is_heard():
    creating = pod("Pending", main={"waiting": {"reason": "ContainerCreating"}})
    assert not decide(view("preparing"), (creating,), NOW)
    unschedulable = summarize_pod({"metadata": {"name": "train-1"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/12 nodes are available: 12 Insufficient nvidia.com/gpu."}]}})
    noted = decide(view("preparing"), (unschedulable,), NOW)
    assert (noted.status.reason, noted.status.message) == (
        "Unschedulable", "0/12 nodes are available: 12 Insufficient nvidia.com/gpu.")


def test_a_waiting_message_longer_than_the_schema_allows_is_cut():
    pulling = pod("Pending", main={"waiting": {"reason": "ErrImagePull", "message": "x" * 5000}})
    assert len(valid(decide(view("preparing"), (pulling,), NOW).status).message) == 1024


# --- names --------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 200, 251, 252, 253])
@pytest.mark.parametrize("attempt", [1, 9, 10, 100])
def test_every_pod_name_fits_for_every_workload_name_the_crd_accepts(length, attempt):
    workload = ("ab.c-" * 60)[:length - 1] + "z"
    name = pod_name(workload, attempt)
    assert len(name) <= NAME_LIMIT and DNS_SUBDOMAIN.match(name), name
    assert name.endswith(f"-{attempt}") and name == pod_name(workload, attempt)  # stable


def test_long_names_that_share_a_prefix_make_different_pod_names():
    assert pod_name("a" * 252 + "b", 1) != pod_name("a" * 252 + "c", 1)
    assert pod_name("short", 3) == "short-3"  # names that fit are unchanged


# --- results ------------------------------------------------------------------------------------

@pytest.mark.parametrize("message", ["[" * 4096, "1" + "0" * 400, '{"loss": NaN}', "Infinity", "-1" + "0" * 19,
                                     "[" * 40 + "]" * 40])
def test_a_result_that_cannot_be_stored_as_json_is_kept_as_text(message):
    assert parse_result(message) == message[:RESULT_LIMIT]


@pytest.mark.parametrize(("message", "result"), [('{"accuracy": 0.93}', {"accuracy": 0.93}), ("9223372036854775807",
                                                 9223372036854775807), ("[[1]]", [[1]]), ("done", "done"), ("", None)])
def test_a_result_that_is_json_is_kept_as_json(message, result):
    assert parse_result(message) == result


# --- a status edited by hand ----------------------------------------------------------------------

def test_preparing_with_no_history_does_not_crash_and_still_moves():
    edited = WorkloadView.from_body({**_body(view("preparing", spec={"preparingTimeoutSeconds": 60})),
                                     "status": {"state": "preparing", "attempts": 1, "run": {"pod": "train-1"}}})
    assert not decide(edited, (pod("Pending"),), NOW + datetime.timedelta(days=1))  # no entry time: no timeout
    started = decide(edited, (pod("Running", main=RUNNING),), NOW)
    assert valid(started.status).state is State.RUNNING


def test_attempts_far_beyond_any_limit_do_not_overflow_the_backoff():
    assert Policy().backoff(1100) == datetime.timedelta(seconds=300)
    assert decide(view("orphaned", attempts=1100, spec={"maxAttempts": 100}), (), NOW).status.state is State.QUEUED


def test_a_failed_reconcile_is_said_while_active_and_never_over_a_final_reason():
    noted = reconcile_failed(view("running"), "Refused: the API server refused the write", NOW)
    assert (valid(noted.status).reason, noted.status.state) == (RECONCILE_FAILED, State.RUNNING)
    assert not reconcile_failed(view("completed"), "Refused: …", NOW)
    assert not reconcile_failed(view(None), "Refused: …", NOW)


def test_a_run_result_of_a_huge_integer_is_stored_as_text():
    done = decide(view("collecting"), (pod("Succeeded", main=exited(0, message="1" + "0" * 400)),), NOW)
    assert valid(done.status).run.result == "1" + "0" * 400


def _body(v: WorkloadView) -> dict:
    return {"metadata": {"name": v.name, "namespace": v.namespace, "uid": v.uid, "generation": v.generation,
                         "resourceVersion": v.resource_version, "finalizers": list(v.finalizers)},
            "spec": v.spec.model_dump(mode="json", by_alias=True, exclude_none=True) if v.spec else {}}
