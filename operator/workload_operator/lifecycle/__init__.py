"""The pure lifecycle core: states, the transition map, spec and status models.

No I/O and no kopf or Kubernetes client imports here: everything is a function
of its arguments (time included), so it is tested without fakes.
"""

from workload_operator.lifecycle.spec import InvalidSpec, WorkloadSpec, WorkloadType, parse_spec
from workload_operator.lifecycle.states import (
    INITIAL, TERMINAL, TRANSITIONS, InvalidTransition, State, allowed_targets, can_transition,
    check_transition, is_terminal, mermaid_diagram,
)
from workload_operator.lifecycle.status import (
    HISTORY_LIMIT, Condition, ConditionStatus, ConditionType, HistoryEntry, WorkloadStatus, apply_transition,
)

__all__ = [
    "HISTORY_LIMIT", "INITIAL", "TERMINAL", "TRANSITIONS",
    "Condition", "ConditionStatus", "ConditionType", "HistoryEntry", "InvalidSpec", "InvalidTransition",
    "State", "WorkloadSpec", "WorkloadStatus", "WorkloadType",
    "allowed_targets", "apply_transition", "can_transition", "check_transition", "is_terminal",
    "mermaid_diagram", "parse_spec",
]
