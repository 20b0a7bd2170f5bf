"""held(): a finished Workload's view, reduced to what its remaining decisions read, decides as the full one does."""

import datetime
import itertools

import pytest

from tests.unit.test_decide import NOW, pod, view
from workload_operator.held import held, waits_on_nothing
from workload_operator.lifecycle.decide import Policy, decide
from workload_operator.lifecycle.gang import pod_name
from workload_operator.lifecycle.pods import summarize_pod
from workload_operator.lifecycle.states import TERMINAL, State

SPECS = {
    "batch": {},
    "service": {"type": "service", "port": 8000},
    "ttl-0": {"ttlSecondsAfterFinished": 0},
    "ttl-1h": {"ttlSecondsAfterFinished": 3600},
    "service-ttl-1h": {"type": "service", "port": 8000, "ttlSecondsAfterFinished": 3600},
    "cancelled-by-spec": {"cancel": True},
    "invalid": {"maxAttempts": 0},  # a spec made invalid after it ran: no spec in the view
    "gang": {"replicas": 3},        # its headless Service goes too
}


def overdue_pod(attempt: int):
    """A pod whose graceful deletion was due long ago (its node is gone): the operator deletes it with grace 0."""
    return summarize_pod({"metadata": {"name": pod_name("train", attempt), "uid": f"pod-{attempt}",
                                       "deletionTimestamp": "2026-11-23T10:00:00Z"}, "status": {"phase": "Running"}})


PODS = {
    "none": (),
    "its-pod": (pod("Succeeded", attempt=1),),
    "two-pods": (pod("Succeeded", attempt=1), pod("Pending", attempt=2)),
    "other-first": (pod("Pending", attempt=2), pod("Succeeded", attempt=1)),
    "overdue": (overdue_pod(1),),
    "still-running": (pod("Running", attempt=1),),  # an attempt ended by a failure or a deadline: deleted next
}


def decision_from(v, known, now):
    """decide() as the shell calls it: with all the workload's pods."""
    return decide(v, known, now, policy=Policy())


@pytest.mark.parametrize("state,spec,deleting,finalizer,pods", list(itertools.product(
    sorted(TERMINAL), SPECS, (False, True), (True, False), PODS)))
def test_a_finished_workload_held_reduced_decides_as_its_full_view(state, spec, deleting, finalizer, pods):
    full = view(str(state), spec=SPECS[spec], deleting=deleting, finalizer=finalizer)
    kept = held(full)
    assert kept.status.history == [] and kept.status.run is None  # what it is for: less held
    for now in (NOW, NOW + datetime.timedelta(hours=2)):  # before and after a TTL
        expected, got = decision_from(full, PODS[pods], now), decision_from(kept, PODS[pods], now)
        assert got.status is None  # nothing is ever written from a reduced view
        assert got.recheck_at == expected.recheck_at
        # The same requests; two pods of one workload may be deleted in another order (the reduced view does not
        # say which one was the current attempt's).
        assert sorted(map(repr, got.actions)) == sorted(map(repr, expected.actions))


@pytest.mark.parametrize("state", [s for s in State if s not in TERMINAL])
def test_a_workload_that_has_not_finished_is_held_whole(state):
    full = view(str(state))
    assert held(full) is full


def test_a_status_that_cannot_be_read_is_held_whole():
    body_view = view("completed")
    unreadable = type(body_view)(**{**body_view.__dict__, "status_error": "status.history.0.at: bad"})
    assert held(unreadable) is unreadable


def test_finished_workloads_share_their_spec_and_status_when_no_ttl_needs_their_completion_time():
    one, two = held(view("completed")), held(view("completed", spec={"image": "other", "args": ["x"]}))
    assert one.spec is two.spec and one.status is two.status and one.finalizers is two.finalizers
    assert held(view("completed", spec={"ttlSecondsAfterFinished": 60})).status.completion_time is not None


@pytest.mark.parametrize("state,spec,deleting,finalizer", list(itertools.product(
    sorted(TERMINAL), SPECS, (False, True), (True, False))))
def test_a_finished_workload_that_waits_on_nothing_has_nothing_to_decide_until_a_pod_or_its_deletion_comes(
        state, spec, deleting, finalizer):
    kept = held(view(str(state), spec=SPECS[spec], deleting=deleting, finalizer=finalizer))
    waits = not deleting and "ttl" not in spec
    assert waits_on_nothing(kept) is waits
    decisions = [decision_from(kept, (), now) for now in (NOW, NOW + datetime.timedelta(days=365))]
    if waits:  # held outside kopf: only a pod's event or its own next change brings it back
        assert not any(decisions)
    elif finalizer or not deleting:  # a TTL to run out, or a release to make: decided from time, or at once
        assert any(d.actions or d.recheck_at for d in decisions)
