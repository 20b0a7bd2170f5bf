"""Property tests: whatever the kubelet writes into a pod and whatever a Workload the schema accepts says,
``decide`` never raises, and every status it writes passes the CRD's schema (the models it is generated from,
validated again from JSON) and its CEL transition rule, step after step until it settles."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_decide import NOW, PATHS, status_in
from workload_operator.lifecycle import WorkloadStatus
from workload_operator.lifecycle.decide import (
    FINALIZER, CreatePod, Policy, WorkloadView, decide,
)
from workload_operator.lifecycle.gang import NAME_LIMIT, pod_name
from workload_operator.lifecycle.pods import summarize_pod
from workload_operator.lifecycle.reasons import KNOWN

MAX_STEPS = 20  # as the shell's reconcile loop
KUBELET_REASONS = [*KNOWN, "OutOfnvidia.com/gpu", "OutOfephemeral-storage", "OutOfcpu", "Evicted", "NodeLost",
                   "Terminated", "PreemptionByScheduler", "DeletionByTaintManager", "EvictionByEvictionAPI"]

reasons = st.one_of(st.sampled_from(KUBELET_REASONS), st.text(max_size=200))
messages = st.one_of(st.text(max_size=200), st.text(max_size=4200), st.sampled_from(["[" * 4096, "1" + "0" * 400]))
stamps = st.sampled_from([None, "2026-11-23T11:00:00Z"])
exit_codes = st.one_of(st.none(), st.integers(-2**31, 2**31 - 1), st.sampled_from([0, 1, 137, 143]))


@st.composite
def container_states(draw) -> dict[str, Any] | None:
    kind = draw(st.sampled_from(["none", "waiting", "running", "terminated", "empty"]))
    if kind == "none":
        return None
    if kind == "empty":
        return {}
    if kind == "waiting":
        return {"waiting": {"reason": draw(reasons), "message": draw(messages)}}
    if kind == "running":
        return {"running": {"startedAt": draw(stamps)}}
    return {"terminated": {"exitCode": draw(exit_codes), "reason": draw(reasons), "message": draw(messages),
                           "startedAt": draw(stamps), "finishedAt": draw(stamps)}}


@st.composite
def pod_bodies(draw, name: str) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if (phase := draw(st.sampled_from([None, "Pending", "Running", "Succeeded", "Failed", "Unknown"]))) is not None:
        status["phase"] = phase
    if draw(st.booleans()):
        status["reason"], status["message"] = draw(reasons), draw(messages)
    conditions = []
    for kind in draw(st.sets(st.sampled_from(["Ready", "DisruptionTarget", "PodScheduled"]))):
        conditions.append({"type": kind, "status": draw(st.sampled_from(["True", "False", "Unknown"])),
                           "reason": draw(reasons), "message": draw(messages)})
    status["conditions"] = conditions
    if (main := draw(container_states())) is not None:
        status["containerStatuses"] = [{"name": "main", "state": main}]
    meta = {"name": name, "uid": "pod-uid", **({"deletionTimestamp": "x"} if draw(st.booleans()) else {})}
    return {"metadata": meta, "status": status}


@st.composite
def views(draw) -> WorkloadView:
    name = draw(st.sampled_from(["train", "a" * 253, "b" * 247 + ".c-d.e"]))
    state = draw(st.sampled_from([None, *PATHS]))
    attempts = draw(st.one_of(st.integers(0, 3), st.integers(0, 1100)))
    status = status_in(state, attempts if state not in (None, "queued") or attempts == 0 else attempts)
    if status.run is not None:
        status = status.model_copy(update={"run": status.run.model_copy(update={"pod": pod_name(name, attempts)})})
    if draw(st.booleans()):  # edited by hand within the schema: no history
        status = status.model_copy(update={"history": []})
    spec: dict[str, Any] = {"image": "busybox", "maxAttempts": draw(st.integers(1, 100)),
                            "cancel": draw(st.booleans())}
    if draw(st.booleans()):
        spec.update(type="service", port=8080)
    for field in ("preparingTimeoutSeconds", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if draw(st.booleans()):
            spec[field] = draw(st.integers(1, 31_536_000))
    body = {"metadata": {"name": name, "namespace": "ml", "uid": "u-1", "generation": 1, "resourceVersion": "7",
                         "finalizers": [FINALIZER], **({"deletionTimestamp": "x"} if draw(st.booleans()) else {})},
            "spec": spec, "status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
    return WorkloadView.from_body(body)


def stored(status: WorkloadStatus) -> dict[str, Any]:
    """The status as JSON the API server can store (no NaN), validated again against the models."""
    data = json.loads(json.dumps(status.model_dump(mode="json", by_alias=True, exclude_none=True), allow_nan=False))
    WorkloadStatus.model_validate(data)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_decide_never_raises_and_every_status_it_writes_is_accepted(transition_rule, data):
    view = data.draw(views())
    pod = None
    if view.status.run is not None and data.draw(st.booleans()):
        pod = summarize_pod(data.draw(pod_bodies(view.status.run.pod)))
    now = NOW + datetime.timedelta(seconds=data.draw(st.integers(0, 10**7)))
    walk(transition_rule, view, pod, now)


def walk(transition_rule, view: WorkloadView, pod, now) -> None:
    """Step as the shell does, with the pod as it is, until nothing changes: every write accepted."""
    spec = view.spec.model_dump(mode="json", by_alias=True, exclude_none=True) if view.spec else {}
    for _ in range(MAX_STEPS):
        decision = decide(view, (pod,) if pod is not None else (), now, policy=Policy())
        if decision.status is None:
            return
        old, new = stored(view.status), stored(decision.status)
        old_object = {"spec": spec, **({"status": old} if view.status.state is not None else {})}
        assert transition_rule.allows({"spec": spec, "status": new}, old_object), (old.get("state"), new.get("state"))
        view = dataclasses.replace(view, status=WorkloadStatus.model_validate(new))
        for action in decision.actions:
            if isinstance(action, CreatePod):  # the new attempt's pod, as the API server returns it
                assert len(pod_name(view.name, action.attempt)) <= NAME_LIMIT
                pod = summarize_pod({"metadata": {"name": pod_name(view.name, action.attempt), "uid": "new"},
                                     "status": {"phase": "Pending"}})
    raise AssertionError(f"no steady state after {MAX_STEPS} steps from {view.status.state}")


def test_the_findings_of_the_real_cluster(transition_rule):
    from tests.unit.test_decide import view as make_view
    gpu = summarize_pod({"metadata": {"name": "train-1"}, "status": {"phase": "Failed", "reason": "OutOfnvidia.com/gpu",
                                                                    "message": "Node didn't have enough resource"}})
    walk(transition_rule, make_view("preparing"), gpu, NOW)
    for message in ("[" * 4096, "1" + "0" * 400):
        done = summarize_pod({"metadata": {"name": "train-1"}, "status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 0, "message": message}}}]}})
        walk(transition_rule, make_view("running"), done, NOW)


@pytest.fixture(scope="module")
def transition_rule(root_rules):
    return root_rules[".status.state"]
