"""The lifecycle states of a Workload and the one map of transitions between them.

Everything that validates a state change (the operator's core, the CRD's CEL rule,
the docs' diagram) is derived from ``TRANSITIONS``; nothing else lists edges.
The map is exactly the one of the seed state machine (``ValidTransitions``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class State(enum.StrEnum):
    QUEUED = "queued"          # accepted, waiting for capacity
    PREPARING = "preparing"    # pod created, waiting to start (scheduling, image pull)
    RUNNING = "running"        # the main container runs
    COLLECTING = "collecting"  # the main container exited 0: results are being collected
    COMPLETED = "completed"    # finished successfully
    FAILED = "failed"          # finished unsuccessfully
    CANCELLED = "cancelled"    # stopped on the user's request
    ORPHANED = "orphaned"      # the worker was lost: the workload goes back to the queue
    SERVING = "serving"        # a service is up and ready
    STOPPING = "stopping"      # a service is shutting down gracefully


S = State
TRANSITIONS: Mapping[State, tuple[State, ...]] = {
    S.QUEUED: (S.PREPARING, S.FAILED, S.CANCELLED),
    S.PREPARING: (S.RUNNING, S.FAILED, S.CANCELLED),
    S.RUNNING: (S.COLLECTING, S.FAILED, S.ORPHANED, S.SERVING, S.CANCELLED),
    S.COLLECTING: (S.COMPLETED, S.FAILED, S.CANCELLED),
    S.COMPLETED: (),
    S.FAILED: (),
    S.CANCELLED: (),
    S.ORPHANED: (S.QUEUED,),
    S.SERVING: (S.STOPPING, S.FAILED, S.ORPHANED, S.CANCELLED),
    S.STOPPING: (S.COMPLETED, S.FAILED),
}
del S

#: The state every Workload starts in: the only one allowed as the first status write.
INITIAL = State.QUEUED
TERMINAL: frozenset[State] = frozenset(state for state, targets in TRANSITIONS.items() if not targets)


class InvalidTransition(ValueError):
    """A state change that the lifecycle map does not allow.

    ``from_state`` is None for a Workload that has no state yet. The states are
    kept as given (strings), so an unknown state name is reported, not lost.
    """

    def __init__(self, from_state: str | None, to_state: str) -> None:
        self.from_state = from_state
        self.to_state = to_state
        self.allowed: tuple[State, ...] = allowed_targets(from_state)
        super().__init__(self._explain())

    def _explain(self) -> str:
        edge = f"invalid state transition {self.from_state} -> {self.to_state}"
        for name in (self.from_state, self.to_state):
            if name is not None and _as_state(name) is None:
                return f"{edge}: unknown state {name!r} (known: {', '.join(State)})"
        if self.from_state is None:
            return f"invalid first state {self.to_state}: {where_to(None)}"
        return f"{edge}: {where_to(self.from_state)}"


def where_to(from_state: str | None) -> str:
    """Says, for people, where a Workload may go from ``from_state`` (the CRD's CEL messages reuse it)."""
    if from_state is None:
        return f"a Workload starts as {INITIAL}"
    allowed = allowed_targets(from_state)
    if not allowed:
        return f"{from_state} is terminal"
    return f"from {from_state} a Workload may go to {', '.join(allowed)}"


def _as_state(name: str | None) -> State | None:
    try:
        return State(name) if name is not None else None
    except ValueError:
        return None


def allowed_targets(from_state: str | None) -> tuple[State, ...]:
    """The states reachable in one step; ``None`` (no state yet) may only become ``queued``."""
    if from_state is None:
        return (INITIAL,)
    state = _as_state(from_state)
    return TRANSITIONS[state] if state is not None else ()


def can_transition(from_state: str | None, to_state: str) -> bool:
    """Whether ``from_state -> to_state`` is an edge of the map. Unknown names are never allowed."""
    target = _as_state(to_state)
    return target is not None and target in allowed_targets(from_state)


def check_transition(from_state: str | None, to_state: str) -> State:
    """Return ``to_state`` as a State, or raise InvalidTransition naming both ends and the choices."""
    if not can_transition(from_state, to_state):
        raise InvalidTransition(from_state, to_state)
    return State(to_state)


def is_terminal(state: str) -> bool:
    """Whether no transition leaves ``state``. An unknown name raises InvalidTransition, not KeyError."""
    known = _as_state(state)
    if known is None:
        raise InvalidTransition(state, state)
    return known in TERMINAL


def mermaid_diagram() -> str:
    """The transition map as a Mermaid state diagram (README and docs embed exactly this)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
    lines += [f"    {source} --> {target}" for source, targets in TRANSITIONS.items() for target in targets]
    lines += [f"    {state} --> [*]" for state in State if state in TERMINAL]
    return "\n".join(lines)
