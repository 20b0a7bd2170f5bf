"""The Workload status and the one function that moves it along the lifecycle map.

Pure: no I/O, no clock. ``apply_transition`` takes ``now`` and returns a new status;
the operator writes it to the status subresource as one conditional write.

Conditions are a function of the state (plus readiness for services), so they can
never disagree with it:

===========  ==========================================================
Active       True while the workload holds a pod (preparing … stopping)
Ready        True while serving and the server answers its readiness probe
Finished     True in a terminal state (completed, failed, cancelled)
Succeeded    True when completed, False when failed or cancelled, else Unknown
===========  ==========================================================

``history`` keeps the newest ``HISTORY_LIMIT`` transitions (the oldest are dropped
first, so the kept entries are still a connected path), and ``transitions`` counts
all of them, so ``transitions - len(history)`` entries were dropped.
"""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

from workload_operator.lifecycle.states import TERMINAL, State, check_transition

HISTORY_LIMIT = 50
MESSAGE_LIMIT = 1024
# metav1.Condition's reason syntax: CamelCase, machine-readable.
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

ACTIVE_STATES = frozenset({State.PREPARING, State.RUNNING, State.COLLECTING, State.SERVING, State.STOPPING})


def _rfc3339(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Kubernetes timestamps are RFC 3339 in UTC with whole seconds (metav1.Time).
Time = Annotated[
    datetime.datetime,
    PlainSerializer(_rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Reason = Annotated[str, Field(min_length=1, max_length=1024, pattern=REASON_PATTERN)]
Message = Annotated[str, Field(max_length=MESSAGE_LIMIT)]


class ConditionType(enum.StrEnum):
    ACTIVE = "Active"
    READY = "Ready"
    FINISHED = "Finished"
    SUCCEEDED = "Succeeded"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Condition(_Model):
    type: ConditionType
    status: ConditionStatus
    reason: Reason
    message: Message = ""
    last_transition_time: Time
    observed_generation: int | None = Field(None, ge=0)


class HistoryEntry(_Model):
    from_state: State | None = Field(None, alias="from", description="Absent for the first state.")
    to_state: State = Field(alias="to")
    at: Time
    reason: Reason


class RunInfo(_Model):
    """The current attempt's pod and, once it ended, how."""

    pod: str = Field(max_length=253, description="The pod of the current attempt.")
    exit_code: int | None = Field(None, description="The main container's exit code.")
    started_at: Time | None = None
    finished_at: Time | None = None
    result: Any = Field(None, description="The termination message of a successful run: JSON when it parses, else text (4 KiB at most).",
                        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})


class PodCounts(_Model):
    """The current attempt's pods, counted when the status is written (with each transition or note, not on every
    pod event: see docs/lifecycle.md)."""

    active: int = Field(0, ge=0, description="Pods running or waiting to (not finished, not being deleted).")
    ready: int = Field(0, ge=0, description="Pods whose Ready condition is True.")
    succeeded: int = Field(0, ge=0, description="Pods whose main container exited 0.")
    failed: int = Field(0, ge=0, description="Pods that failed.")


class WorkloadStatus(_Model):
    state: State | None = Field(None, description="Where the workload is in its lifecycle.")
    reason: Reason | None = Field(None, description="Why it is in that state (CamelCase).")
    message: Message | None = Field(None, description="Why it is in that state, for people.")
    attempts: int = Field(0, ge=0, description="Attempts started so far (a pod, or a gang of pods, each).")
    evictions: int = Field(0, ge=0, description="Attempts that Kueue preempted or evicted: not counted against maxAttempts.")
    observed_generation: int | None = Field(None, ge=0, description="The spec generation this status was computed from.")
    conditions: list[Condition] = Field(default_factory=list, max_length=len(ConditionType))
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT, description=f"The newest {HISTORY_LIMIT} transitions, oldest first.")
    transitions: int = Field(0, ge=0, description="All transitions ever made; history keeps the newest ones.")
    start_time: Time | None = Field(None, description="When the workload first started running.")
    completion_time: Time | None = Field(None, description="When it reached a terminal state.")
    run: RunInfo | None = Field(None, description="The current attempt's pod and its outcome.")
    endpoint: str | None = Field(None, max_length=512, description="type: service: where the server answers (host:port in the cluster).")
    pods: PodCounts | None = Field(None, description="The current attempt's pods, as of the last status write.")
    pods_ready: str | None = Field(None, max_length=16, description="Ready pods of the attempt, as READY/REPLICAS (e.g. 6/8).")

    def condition(self, type_: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


def truncate(message: str, limit: int = MESSAGE_LIMIT) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def desired_condition_statuses(state: State, *, ready: bool = True) -> dict[ConditionType, ConditionStatus]:
    """What each condition must say in ``state``; ``ready`` only matters while serving."""
    def flag(value: bool) -> ConditionStatus:
        return ConditionStatus.TRUE if value else ConditionStatus.FALSE

    if state is State.COMPLETED:
        succeeded = ConditionStatus.TRUE
    elif state in TERMINAL:
        succeeded = ConditionStatus.FALSE
    else:
        succeeded = ConditionStatus.UNKNOWN
    return {
        ConditionType.ACTIVE: flag(state in ACTIVE_STATES),
        ConditionType.READY: flag(state is State.SERVING and ready),
        ConditionType.FINISHED: flag(state in TERMINAL),
        ConditionType.SUCCEEDED: succeeded,
    }


def set_condition(
    conditions: list[Condition], type_: ConditionType, status: ConditionStatus, *,
    reason: str, message: str, now: datetime.datetime, generation: int | None,
) -> list[Condition]:
    """Set one condition; ``lastTransitionTime`` moves only when its status flips."""
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_, status=status, reason=reason, message=truncate(message),
        last_transition_time=since, observed_generation=generation,
    )
    return [new if c.type == type_ else c for c in conditions] if old is not None else [*conditions, new]


def set_readiness(
    status: WorkloadStatus, ready: bool, *, reason: str, message: str, now: datetime.datetime, generation: int | None,
) -> WorkloadStatus:
    """A serving workload's Ready condition follows its server's readiness (no transition)."""
    conditions = set_condition(
        status.conditions, ConditionType.READY, ConditionStatus.TRUE if ready else ConditionStatus.FALSE,
        reason=reason, message=message, now=now, generation=generation,
    )
    return status.model_copy(update={"conditions": conditions, "reason": reason, "message": truncate(message)})


def apply_transition(
    status: WorkloadStatus, to_state: str, *, reason: str, message: str = "",
    now: datetime.datetime, generation: int | None = None,
) -> WorkloadStatus:
    """Move ``status`` to ``to_state``, or raise InvalidTransition if the map has no such edge.

    Returns a new status: state, reason and message set; one history entry appended
    (the history capped at HISTORY_LIMIT); conditions recomputed; start and completion
    times stamped on the first start and on finishing.
    """
    target = check_transition(status.state, to_state)
    message = truncate(message)
    conditions = status.conditions
    for type_, condition_status in desired_condition_statuses(target).items():
        conditions = set_condition(
            conditions, type_, condition_status, reason=reason, message=message, now=now, generation=generation,
        )
    entry = HistoryEntry(from_state=status.state, to_state=target, at=now, reason=reason)
    return status.model_copy(update={
        "state": target,
        "reason": reason,
        "message": message,
        "observed_generation": generation if generation is not None else status.observed_generation,
        "conditions": conditions,
        "history": [*status.history, entry][-HISTORY_LIMIT:],
        "transitions": status.transitions + 1,
        "start_time": status.start_time or (now if target is State.RUNNING else None),
        "completion_time": now if target in TERMINAL else None,
    })
