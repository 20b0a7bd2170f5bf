"""Applying transitions to a status: history, conditions and timestamps stay consistent with the state."""

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workload_operator.lifecycle import (
    HISTORY_LIMIT, TERMINAL, TRANSITIONS, ConditionStatus, ConditionType, InvalidTransition, State,
    WorkloadStatus, apply_transition,
)
from workload_operator.lifecycle.status import MESSAGE_LIMIT, desired_condition_statuses

T0 = datetime.datetime(2026, 11, 23, 12, 0, 0, tzinfo=datetime.UTC)


def at(seconds: int) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def walk(*states: str) -> WorkloadStatus:
    status = WorkloadStatus()
    for i, state in enumerate(states):
        status = apply_transition(status, state, reason=f"Step{i}", now=at(i), generation=1)
    return status


def assert_consistent(status: WorkloadStatus) -> None:
    """The invariants every status must keep, whatever path led to it."""
    if status.state is None:
        assert status.history == [] and status.conditions == [] and status.transitions == 0
        return
    assert status.history[-1].to_state == status.state
    assert status.history[-1].reason == status.reason
    for earlier, later in zip(status.history, status.history[1:]):
        assert later.from_state == earlier.to_state
        assert later.to_state in TRANSITIONS[earlier.to_state]
        assert later.at >= earlier.at
    assert len(status.history) == min(status.transitions, HISTORY_LIMIT)
    if status.transitions <= HISTORY_LIMIT:
        assert status.history[0].from_state is None and status.history[0].to_state == State.QUEUED
    assert {c.type: c.status for c in status.conditions} == desired_condition_statuses(status.state)
    assert (status.completion_time is not None) == (status.state in TERMINAL)


def test_a_full_batch_lifecycle():
    status = walk("queued", "preparing", "running", "collecting", "completed")
    assert status.state == State.COMPLETED
    assert [(h.from_state, h.to_state) for h in status.history] == [
        (None, "queued"), ("queued", "preparing"), ("preparing", "running"),
        ("running", "collecting"), ("collecting", "completed"),
    ]
    assert status.start_time == at(2)
    assert status.completion_time == at(4)
    conditions = {c.type: c.status for c in status.conditions}
    assert conditions == {
        ConditionType.ACTIVE: ConditionStatus.FALSE, ConditionType.READY: ConditionStatus.FALSE,
        ConditionType.FINISHED: ConditionStatus.TRUE, ConditionType.SUCCEEDED: ConditionStatus.TRUE,
    }
    assert_consistent(status)


def test_a_service_lifecycle_is_ready_only_while_serving():
    serving = walk("queued", "preparing", "running", "serving")
    assert serving.condition(ConditionType.READY).status == ConditionStatus.TRUE
    stopping = apply_transition(serving, "stopping", reason="Cancelled", now=at(10))
    assert stopping.condition(ConditionType.READY).status == ConditionStatus.FALSE
    assert stopping.condition(ConditionType.ACTIVE).status == ConditionStatus.TRUE
    assert_consistent(stopping)


def test_an_invalid_transition_is_refused_and_changes_nothing():
    status = walk("queued", "preparing")
    before = status.model_dump()
    with pytest.raises(InvalidTransition) as refused:
        apply_transition(status, "completed", reason="Nope", now=at(9))
    assert refused.value.from_state == "preparing" and refused.value.to_state == "completed"
    assert status.model_dump() == before


def test_the_first_state_must_be_queued():
    with pytest.raises(InvalidTransition, match="invalid first state running"):
        apply_transition(WorkloadStatus(), "running", reason="Nope", now=T0)


def test_last_transition_time_moves_only_when_a_condition_flips():
    running = walk("queued", "preparing", "running")          # Active became True at t=1
    collecting = apply_transition(running, "collecting", reason="Exited", now=at(50))
    active = collecting.condition(ConditionType.ACTIVE)
    assert active.status == ConditionStatus.TRUE
    assert active.last_transition_time == at(1)
    assert active.reason == "Exited"                          # reason and message follow the latest change
    done = apply_transition(collecting, "completed", reason="Collected", now=at(60))
    assert done.condition(ConditionType.ACTIVE).last_transition_time == at(60)


def test_the_generation_is_recorded():
    status = apply_transition(WorkloadStatus(), "queued", reason="Created", now=T0, generation=7)
    assert status.observed_generation == 7
    assert {c.observed_generation for c in status.conditions} == {7}


def test_messages_are_capped():
    status = apply_transition(WorkloadStatus(), "queued", reason="Created", message="x" * 5000, now=T0)
    assert len(status.message) == MESSAGE_LIMIT and status.message.endswith("…")


def test_a_reason_must_be_camel_case():
    with pytest.raises(ValueError, match="reason"):
        apply_transition(WorkloadStatus(), "queued", reason="not a reason", now=T0)


def test_history_keeps_the_newest_entries_as_a_connected_path():
    status = walk("queued")
    requeues = 0
    while status.transitions <= HISTORY_LIMIT + 10:
        for state in ("preparing", "running", "orphaned", "queued"):
            status = apply_transition(status, state, reason="Loop", now=at(status.transitions))
        requeues += 1
    assert len(status.history) == HISTORY_LIMIT
    assert status.transitions == 1 + 4 * requeues
    assert status.history[-1].at == at(status.transitions - 1)
    assert_consistent(status)


def test_the_status_round_trips_through_its_kubernetes_json():
    status = walk("queued", "preparing", "running", "failed")
    raw = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert raw["history"][0] == {"to": "queued", "at": "2026-11-23T12:00:00Z", "reason": "Step0"}
    assert raw["history"][1]["from"] == "queued"
    assert raw["conditions"][0]["lastTransitionTime"].endswith("Z")
    assert WorkloadStatus.model_validate(raw) == status


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(State)), max_size=120))
def test_random_walks_never_leave_the_map(targets):
    status = WorkloadStatus()
    for step, target in enumerate(targets):
        before = status
        try:
            status = apply_transition(status, target, reason="Random", now=at(step))
        except InvalidTransition:
            assert status is before
            assert target not in (TRANSITIONS[status.state] if status.state else (State.QUEUED,))
        else:
            assert status.state == target
        assert_consistent(status)
