"""The CRD's CEL rules agree with the Python core on every case (the API server's own refusals)."""

import itertools

import pytest

from tests.cel.conftest import Rule
from workload_operator.lifecycle import InvalidSpec, InvalidTransition, State, can_transition, is_terminal, parse_spec

STATES = [str(s) for s in State]
PAIRS = list(itertools.product(STATES, STATES))


def workload(state: str | None = None, cancel: bool | None = None) -> dict:
    obj: dict = {"spec": {"image": "busybox"}}
    if cancel is not None:
        obj["spec"]["cancel"] = cancel
    if state is not None:
        obj["status"] = {"state": state, "attempts": 1}
    return obj


@pytest.fixture(scope="module")
def transition_rule(root_rules):
    return root_rules[".status.state"]


@pytest.fixture(scope="module")
def cancel_rule(root_rules):
    return root_rules[".spec.cancel"]


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_the_transition_rule_agrees_with_the_map_on_every_pair(transition_rule, old, new):
    allowed = transition_rule.allows(workload(new), workload(old))
    if old == new:
        assert allowed, "a status write that keeps the state (conditions, attempts) must pass"
    else:
        assert allowed == can_transition(old, new)
        if not allowed:
            # The API server's refusal says exactly what the operator's core says.
            assert transition_rule.message(workload(new), workload(old)) == str(InvalidTransition(old, new))


@pytest.mark.parametrize("new", STATES)
def test_the_first_status_write_may_only_set_queued(transition_rule, new):
    allowed = transition_rule.allows(workload(new), workload(None))
    assert allowed == can_transition(None, new) == (new == "queued")
    if not allowed:
        assert transition_rule.message(workload(new), workload(None)) == str(InvalidTransition(None, new))


def test_the_first_status_write_sees_an_object_with_an_empty_status_too(transition_rule):
    old = {"spec": {"image": "busybox"}, "status": {}}
    assert transition_rule.allows(workload("queued"), old)
    assert not transition_rule.allows(workload("running"), old)


def test_writes_that_carry_no_state_pass_before_any_state(transition_rule):
    assert transition_rule.allows(workload(None), workload(None))  # e.g. a label edit on a new object
    assert transition_rule.allows({"spec": {"image": "busybox"}, "status": {"attempts": 0}}, workload(None))


@pytest.mark.parametrize("old", STATES)
def test_a_state_once_set_cannot_be_removed(transition_rule, old):
    without_state = {"spec": {"image": "busybox"}, "status": {"attempts": 1}}
    assert not transition_rule.allows(without_state, workload(old))
    assert transition_rule.message(without_state, workload(old)) == f"status.state cannot be removed once set (it is {old})"
    assert not transition_rule.allows({"spec": {"image": "busybox"}}, workload(old))


@pytest.mark.parametrize("state", [*STATES, None])
def test_the_cancel_rule_refuses_cancelling_only_a_finished_workload(cancel_rule, state):
    allowed = cancel_rule.allows(workload(state, cancel=True), workload(state, cancel=False))
    finished = state is not None and is_terminal(state)
    assert allowed == (not finished)
    if finished:
        assert cancel_rule.message(workload(state, cancel=True), workload(state, cancel=False)) == (
            f"cannot cancel a Workload that has already finished: it is {state}"
        )
    # Neither an already-set cancel nor anything that does not set it is refused.
    assert cancel_rule.allows(workload(state, cancel=True), workload(state, cancel=True))
    assert cancel_rule.allows(workload(state, cancel=False), workload(state, cancel=False))
    assert cancel_rule.allows(workload(state), workload(state))


def test_the_operator_may_record_cancelled_after_a_cancel(cancel_rule, transition_rule):
    old, new = workload("running", cancel=True), workload("cancelled", cancel=True)
    assert cancel_rule.allows(new, old) and transition_rule.allows(new, old)


@pytest.mark.parametrize("spec", [
    {"image": "a"},
    {"image": "a", "type": "batch"},
    {"image": "a", "type": "service", "port": 8080},
    {"image": "a", "type": "service"},
    {"image": "a", "type": "batch", "port": 8080},
    {"image": "a", "port": 8080},
])
def test_the_spec_rules_agree_with_the_spec_model(spec_rules, spec):
    try:
        parse_spec(spec)
        expected_problem = None
    except InvalidSpec as refused:
        expected_problem = str(refused).removeprefix("spec: ")
    problems = [rule.message(spec) for rule in spec_rules if not rule.allows(spec)]
    assert problems == ([expected_problem] if expected_problem else [])


def test_a_gang_keeps_its_size(crd_schema):
    replicas = crd_schema["properties"]["spec"]["properties"]["replicas"]
    (rule,) = (Rule(raw) for raw in replicas["x-kubernetes-validations"])
    assert rule.allows(4, 4)  # a rule that reads oldSelf is skipped on create: any size is taken then
    assert not rule.allows(8, 4) and not rule.allows(1, 4)
    assert rule.message(8, 4) == "spec.replicas cannot be changed: delete the Workload and create it again"
    assert (replicas["minimum"], replicas["maximum"], replicas["default"]) == (1, 256, 1)
