"""What the core needs to know of a pod, read from its raw body (pure)."""

from __future__ import annotations

import dataclasses
import json
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
    ready: bool | None = False   # the pod's Ready condition; None when Unknown (its node stopped reporting)
    disruption: str = ""         # the reason of a DisruptionTarget=True condition (preemption, eviction, taint…)


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
    disruption = conditions.get("DisruptionTarget") or {}
    return PodSummary(
        name=meta.get("name", ""), phase=status.get("phase") or "Pending", main=container,
        uid=meta.get("uid") or "", owner=controller_uid(body),
        reason=status.get("reason") or "", message=status.get("message") or "",
        deleting=bool(meta.get("deletionTimestamp")),
        ready=None if ready_status == "Unknown" else ready_status == "True",
        disruption=(disruption.get("reason") or "DisruptionTarget") if disruption.get("status") == "True" else "",
    )


def parse_result(message: str) -> Any:
    """The run's result: the termination message, as JSON when it is JSON, capped in size."""
    data = message.encode()[:RESULT_LIMIT].decode(errors="ignore")
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data


