"""What the core needs to know of a pod, read from its raw body (pure)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Mapping
from typing import Any

from workload_operator import GROUP, KIND

MAIN_CONTAINER = "main"
RESULT_LIMIT = 4096  # bytes of termination message kept in status.run.result (the kubelet keeps 4096 at most)


@dataclasses.dataclass(frozen=True)
class MainContainer:
    """The main container's status; exactly one of running / terminated / neither (waiting)."""

    running: bool = False
    terminated: bool = False
    exit_code: int | None = None
    reason: str = ""             # e.g. OOMKilled, Error, Completed; or a waiting reason such as ImagePullBackOff
    message: str = ""            # the termination message (or the last log lines, by FallbackToLogsOnError)
    started_at: str | None = None
    finished_at: str | None = None


@dataclasses.dataclass(frozen=True)
class PodSummary:
    name: str
    phase: str                   # Pending, Running, Succeeded, Failed, Unknown
    main: MainContainer
    uid: str = ""                # this pod's own uid: deletes are bound to it
    owner: str = ""              # the uid of the Workload that controls it ("" when none does)
    reason: str = ""             # the pod's own reason, e.g. DeadlineExceeded, Evicted
    message: str = ""
    deleting: bool = False       # has a deletionTimestamp: going away
    # When its graceful deletion is due (the API server sets deletionTimestamp to the time of the delete plus the
    # grace period); only the kubelet's confirmation removes it before or after: a lost node never confirms.
    deletion_due: datetime.datetime | None = None
    # Deleted with a grace period of 0 already (deletionGracePeriodSeconds: 0): gone as soon as no finalizer holds
    # it. The watch may not have shown it gone yet; or someone else's finalizer holds it; or the API server's delete
    # stopped half-way (see decide's force_due).
    forced: bool = False
    finalizers: bool = False     # someone's finalizer holds it until they let go, whatever a delete says
    ready: bool | None = False   # the pod's Ready condition; None when Unknown (its node stopped reporting)
    disruption: str = ""         # the reason of a DisruptionTarget=True condition (preemption, eviction, taint…)
    unscheduled: str = ""        # the reason of a PodScheduled=False condition (Unschedulable, SchedulingGated)
    unscheduled_message: str = ""  # the scheduler's words: "0/12 nodes are available: 12 Insufficient nvidia.com/gpu"
    gates: tuple[str, ...] = ()  # its scheduling gates: while any is left, no scheduler binds it (Kueue holds it so)


def controller_uid(body: Mapping[str, Any]) -> str:
    """The uid of the Workload named by the object's controller owner reference, or "".

    This, not a label, is what makes an object a workload's own: labels are anyone's to set,
    while an owner reference names one incarnation of one Workload by its uid.
    """
    for ref in (body.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True and ref.get("kind") == KIND and str(ref.get("apiVersion", "")).split("/")[0] == GROUP:
            return str(ref.get("uid") or "")
    return ""


def summarize_pod(body: Mapping[str, Any]) -> PodSummary:
    status = body.get("status") or {}
    main: dict[str, Any] = next(
        (c for c in status.get("containerStatuses") or [] if c.get("name") == MAIN_CONTAINER), {},
    )
    state = main.get("state") or {}
    if "terminated" in state:
        term = state["terminated"] or {}
        container = MainContainer(
            terminated=True, exit_code=term.get("exitCode"), reason=term.get("reason") or "",
            message=term.get("message") or "", started_at=term.get("startedAt"), finished_at=term.get("finishedAt"),
        )
    elif "running" in state:
        container = MainContainer(running=True, started_at=(state["running"] or {}).get("startedAt"))
    else:
        waiting = state.get("waiting") or {}
        container = MainContainer(reason=waiting.get("reason") or "", message=waiting.get("message") or "")
    meta = body.get("metadata") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready_status = (conditions.get("Ready") or {}).get("status")
    # Kueue marks the pods it stops (preemption, eviction) with a condition of its own type before it deletes them.
    disruption = next((c for c in (conditions.get("DisruptionTarget"), conditions.get("TerminationTarget"))
                       if c and c.get("status") == "True"), {})
    scheduled = conditions.get("PodScheduled") or {}
    gates = tuple(gate.get("name", "") for gate in (body.get("spec") or {}).get("schedulingGates") or [])
    # SchedulingGated is stale once the gates are lifted (Kueue's admission): the scheduler has not looked yet.
    unscheduled = scheduled.get("status") == "False" and (bool(gates) or scheduled.get("reason") != "SchedulingGated")
    return PodSummary(
        name=meta.get("name", ""), phase=status.get("phase") or "Pending", main=container,
        uid=meta.get("uid") or "", owner=controller_uid(body),
        reason=status.get("reason") or "", message=status.get("message") or "",
        deleting=bool(meta.get("deletionTimestamp")), deletion_due=_time(meta.get("deletionTimestamp")),
        forced=bool(meta.get("deletionTimestamp")) and meta.get("deletionGracePeriodSeconds") == 0,
        finalizers=bool(meta.get("finalizers")),
        ready=None if ready_status == "Unknown" else ready_status == "True",
        disruption=(disruption.get("reason") or "DisruptionTarget") if disruption.get("status") == "True" else "",
        unscheduled=(scheduled.get("reason") or "Unschedulable") if unscheduled else "",
        unscheduled_message=(scheduled.get("message") or "") if unscheduled else "",
        gates=gates,
    )


RESULT_DEPTH = 32         # nesting kept as JSON; deeper is kept as text
INT64 = range(-2**63, 2**63)  # what the API server stores as a JSON integer


def _time(stamp: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


def parse_result(message: str) -> Any:
    """The run's result: the termination message, as JSON when it is JSON the API server can store (integers
    within int64, finite numbers, nested at most RESULT_DEPTH deep), else as text; capped in size."""
    data = message.encode()[:RESULT_LIMIT].decode(errors="ignore")
    if not data.strip():
        return None
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # not JSON; or "[[[[…", nested past the parser's own limit
        return data
    return value if _storable(value, RESULT_DEPTH) else data


def _storable(value: Any, depth: int) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return value in INT64
    if isinstance(value, float):
        return math.isfinite(value)  # json.loads takes NaN and Infinity; JSON itself does not
    if depth <= 0:
        return False
    items = value.values() if isinstance(value, dict) else value
    return all(_storable(item, depth - 1) for item in items)


