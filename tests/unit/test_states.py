"""The transition map: exactly the seed's edges, everything else refused with a clear error."""

import itertools

import pytest

from workload_operator.lifecycle import (
    INITIAL, TERMINAL, TRANSITIONS, InvalidTransition, State, can_transition, check_transition, is_terminal,
    mermaid_diagram,
)

# Transcribed from the seed's ValidTransitions (shared/seeds/000_*.txt), independently of the code.
SEED_EDGES = {
    ("queued", "preparing"), ("queued", "failed"), ("queued", "cancelled"),
    ("preparing", "running"), ("preparing", "failed"), ("preparing", "cancelled"),
    ("running", "collecting"), ("running", "failed"), ("running", "orphaned"), ("running", "serving"),
    ("running", "cancelled"),
    ("collecting", "completed"), ("collecting", "failed"), ("collecting", "cancelled"),
    ("orphaned", "queued"),
    ("serving", "stopping"), ("serving", "failed"), ("serving", "orphaned"), ("serving", "cancelled"),
    ("stopping", "completed"), ("stopping", "failed"),
}
ALL_STATES = [
    "queued", "preparing", "running", "collecting", "completed", "failed", "cancelled", "orphaned", "serving", "stopping",
]
PAIRS = list(itertools.product(ALL_STATES, ALL_STATES))


def test_the_ten_states():
    assert sorted(State) == sorted(ALL_STATES)
    assert set(TRANSITIONS) == set(State)


def test_the_map_is_exactly_the_seeds():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == SEED_EDGES


@pytest.mark.parametrize(("from_state", "to_state"), sorted(SEED_EDGES))
def test_every_seed_transition_is_allowed(from_state, to_state):
    assert can_transition(from_state, to_state)
    assert check_transition(from_state, to_state) == to_state


@pytest.mark.parametrize(("from_state", "to_state"), [p for p in PAIRS if p not in SEED_EDGES])
def test_every_other_pair_is_refused_with_the_error_type(from_state, to_state):
    assert not can_transition(from_state, to_state)
    with pytest.raises(InvalidTransition) as refused:
        check_transition(from_state, to_state)
    error = refused.value
    assert (error.from_state, error.to_state) == (from_state, to_state)
    assert error.allowed == TRANSITIONS[State(from_state)]
    assert f"{from_state} -> {to_state}" in str(error)


def test_the_error_says_where_the_workload_may_go():
    with pytest.raises(InvalidTransition) as refused:
        check_transition("running", "queued")
    assert str(refused.value) == (
        "invalid state transition running -> queued: "
        "from running a Workload may go to collecting, failed, orphaned, serving, cancelled"
    )


@pytest.mark.parametrize("state", ["completed", "failed", "cancelled"])
def test_terminal_states_have_no_exits(state):
    assert is_terminal(state)
    assert TRANSITIONS[State(state)] == ()
    assert not any(can_transition(state, target) for target in ALL_STATES)
    with pytest.raises(InvalidTransition, match=f"{state} is terminal"):
        check_transition(state, "queued")


def test_only_the_three_final_states_are_terminal():
    assert TERMINAL == {"completed", "failed", "cancelled"}
    assert [s for s in ALL_STATES if is_terminal(s)] == ["completed", "failed", "cancelled"]


@pytest.mark.parametrize("to_state", ALL_STATES)
def test_a_workload_without_state_may_only_become_queued(to_state):
    assert can_transition(None, to_state) == (to_state == INITIAL == "queued")
    if to_state != "queued":
        with pytest.raises(InvalidTransition, match=f"invalid first state {to_state}: a Workload starts as queued"):
            check_transition(None, to_state)


@pytest.mark.parametrize(("from_state", "to_state"), [("bogus", "queued"), ("queued", "bogus"), ("", ""), ("Queued", "preparing")])
def test_unknown_state_names_are_refused_the_same_way(from_state, to_state):
    assert not can_transition(from_state, to_state)
    with pytest.raises(InvalidTransition, match="unknown state") as refused:
        check_transition(from_state, to_state)
    assert (refused.value.from_state, refused.value.to_state) == (from_state, to_state)


def test_is_terminal_of_an_unknown_name_is_the_error_type_not_a_key_error():
    with pytest.raises(InvalidTransition, match="unknown state 'bogus'"):
        is_terminal("bogus")


def test_the_diagram_has_every_edge_once_and_nothing_else():
    lines = mermaid_diagram().splitlines()
    edges = {tuple(line.split(" --> ")) for line in lines[1:]}
    assert lines[0] == "stateDiagram-v2"
    assert len(lines) - 1 == len(edges)  # no duplicates
    assert {(a.strip(), b) for a, b in edges if "[*]" not in (a.strip(), b)} == SEED_EDGES
    assert {b for a, b in edges if a.strip() == "[*]"} == {"queued"}
    assert {a.strip() for a, b in edges if b == "[*]"} == {"completed", "failed", "cancelled"}
