"""decide(): from what the operator sees (a Workload, its pod, the time) to the next single step.

A step is at most one status change (so at most one transition, hence one status
write) plus the actions to run after it. The shell applies the step and calls
decide() again with the result until nothing is left to do; a pod that jumped
(Pending → Succeeded between two events) is so walked along the map one edge at a
time, each edge its own recorded transition.

A step's actions run before its status write, which commits them: the pod of
attempt N is created, then ``preparing`` with ``attempts = N`` is written. Pods
are named by attempt, so repeating a step (after a crash between the two, or from
a stale view) finds the pod already there instead of making a second one, and a
pod that cannot be created leaves the status, and the attempt count, untouched.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from workload_operator.lifecycle.pods import PodSummary, parse_result
from workload_operator.lifecycle.spec import InvalidSpec, WorkloadSpec, parse_spec
from workload_operator.lifecycle.states import TERMINAL, State
from workload_operator.lifecycle.status import RunInfo, WorkloadStatus, apply_transition

FINALIZER = "ml.lifecycle.dev/cleanup"


# --- what the core sees -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WorkloadView:
    name: str
    namespace: str
    uid: str
    generation: int | None
    status: WorkloadStatus
    spec: WorkloadSpec | None          # None when the spec is invalid
    spec_error: str                     # why, naming the field
    deleting: bool                      # has a deletionTimestamp
    finalizers: tuple[str, ...]
    resource_version: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> WorkloadView:
        meta = body.get("metadata") or {}
        try:
            spec, spec_error = parse_spec(body.get("spec")), ""
        except InvalidSpec as exc:
            spec, spec_error = None, str(exc)
        return cls(
            name=meta.get("name", ""), namespace=meta.get("namespace", ""), uid=meta.get("uid", ""),
            generation=meta.get("generation"),
            status=WorkloadStatus.model_validate(body.get("status") or {}),
            spec=spec, spec_error=spec_error,
            deleting=bool(meta.get("deletionTimestamp")),
            finalizers=tuple(meta.get("finalizers") or ()),
            resource_version=str(meta.get("resourceVersion", "")),
        )

    @property
    def has_finalizer(self) -> bool:
        return FINALIZER in self.finalizers

    @property
    def cancel_requested(self) -> bool:
        return self.deleting or (self.spec is not None and self.spec.cancel)


def pod_name(workload: str, attempt: int) -> str:
    """The pod of each attempt has its own name, so a lost pod is never mistaken for its successor."""
    return f"{workload}-{attempt}"


# --- what the core asks for -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AddFinalizer:
    """Hold the Workload on deletion until its pod is gone and the end is recorded."""


@dataclasses.dataclass(frozen=True)
class RemoveFinalizer:
    """Let the API server delete the Workload."""


@dataclasses.dataclass(frozen=True)
class CreatePod:
    attempt: int


@dataclasses.dataclass(frozen=True)
class DeletePod:
    name: str


Action = AddFinalizer | RemoveFinalizer | CreatePod | DeletePod


@dataclasses.dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...] = ()       # to run first
    status: WorkloadStatus | None = None   # then the new status to write; None: no status change

    def __bool__(self) -> bool:
        return self.status is not None or bool(self.actions)


NOTHING = Decision()


# --- how pods end -------------------------------------------------------------------------------


def failure_of(pod: PodSummary) -> tuple[str, str] | None:
    """The (reason, message) of a pod that failed, or None. Criteria, in order:

    1. the main container was OOM-killed → OOMKilled;
    2. the main container exited non-zero → ExitCode, with the code and its last words;
    3. the pod failed otherwise (e.g. DeadlineExceeded) → the pod's reason, or PodFailed.
    """
    main = pod.main
    if main.terminated and main.exit_code not in (0, None):
        words = f": {main.message.strip()}" if main.message.strip() else ""
        if main.reason == "OOMKilled":
            return "OOMKilled", f"the main container ran out of memory (exit code {main.exit_code}){words}"
        return "ExitCode", f"the main container exited with code {main.exit_code}{words}"
    if pod.phase == "Failed":
        return pod.reason or "PodFailed", pod.message or f"pod {pod.name} failed"
    return None


def succeeded(pod: PodSummary) -> bool:
    """The main container exited 0 (the pod Succeeded, or sidecars still run)."""
    return (pod.main.terminated and pod.main.exit_code == 0) or pod.phase == "Succeeded"


def started(pod: PodSummary) -> bool:
    return pod.main.running or pod.main.terminated or pod.phase in ("Running", "Succeeded")


def run_info(pod: PodSummary) -> RunInfo:
    return RunInfo(
        pod=pod.name, exit_code=pod.main.exit_code, started_at=pod.main.started_at,
        finished_at=pod.main.finished_at, result=parse_result(pod.main.message) if succeeded(pod) else None,
    )


# --- the decision -------------------------------------------------------------------------------


def decide(view: WorkloadView, pod: PodSummary | None, now: datetime.datetime) -> Decision:
    """The next step for ``view`` given its current attempt's ``pod`` (None: no such pod)."""
    status = view.status
    state = status.state

    def move(to: State, reason: str, message: str = "", **changes: Any) -> Decision:
        new = apply_transition(status, to, reason=reason, message=message, now=now, generation=view.generation)
        return Decision(status=new.model_copy(update=changes) if changes else new)

    # Finished (or never started) and being deleted: clean up and let go at once.
    if view.deleting and (state is None or state in TERMINAL):
        leftovers = (DeletePod(pod.name),) if pod is not None and not pod.deleting else ()
        return Decision(actions=(*leftovers, RemoveFinalizer())) if view.has_finalizer else NOTHING
    if state in TERMINAL:
        return NOTHING
    # The finalizer goes on before anything is created that deletion must clean up.
    if not view.has_finalizer and not view.deleting:
        return Decision(actions=(AddFinalizer(),))
    if state is None:
        return move(State.QUEUED, "Created", "accepted, waiting for a worker")
    if view.spec is None:
        if state is State.QUEUED:
            return move(State.FAILED, "InvalidSpec", view.spec_error)
        return NOTHING  # the pod runs the spec that was valid; a later bad edit changes nothing
    if view.cancel_requested:
        return _cancel(view, pod, move)
    return _STEPS[state](view, pod, move)


def _cancel(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    """Stop the pod gracefully, wait until it is gone, then record the end."""
    if pod is not None:
        return Decision(actions=(DeletePod(pod.name),)) if not pod.deleting else NOTHING
    why = "the Workload was deleted" if view.deleting else "spec.cancel was set"
    state = view.status.state
    if state is State.ORPHANED:  # orphaned only leads back to the queue; cancel from there
        return move(State.QUEUED, "Cancelling", why)
    if state is State.STOPPING:  # a service shutting down ends as completed
        return move(State.COMPLETED, "Stopped", why)
    return move(State.CANCELLED, "Deleted" if view.deleting else "Cancelled", why)


def _queued(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    assert view.spec is not None
    attempts = view.status.attempts
    if attempts >= view.spec.max_attempts:
        return move(State.FAILED, "RetryLimitExceeded", f"{attempts} of {view.spec.max_attempts} attempts used")
    name = pod_name(view.name, attempts + 1)
    decision = move(State.PREPARING, "PodCreated", f"pod {name} created",
                    attempts=attempts + 1, run=RunInfo(pod=name))
    return dataclasses.replace(decision, actions=(CreatePod(attempts + 1),))


def _preparing(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    assert view.spec is not None
    status = view.status
    if pod is None:
        if status.attempts >= view.spec.max_attempts:
            return move(State.FAILED, "RetryLimitExceeded", f"the pod vanished and {status.attempts} of "
                        f"{view.spec.max_attempts} attempts are used")
        name = pod_name(view.name, status.attempts + 1)
        recreated = status.model_copy(update={
            "attempts": status.attempts + 1, "reason": "PodRecreated",
            "message": f"the pod vanished while preparing; pod {name} created", "run": RunInfo(pod=name),
        })
        return Decision(status=recreated, actions=(CreatePod(status.attempts + 1),))
    if (failure := failure_of(pod)) is not None:
        return move(State.FAILED, *failure, run=run_info(pod))
    if started(pod):
        return move(State.RUNNING, "Started", f"pod {pod.name} is running")
    return NOTHING


def _running(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    assert view.spec is not None
    if pod is None or pod.deleting:
        return _lost(view, move, "the pod vanished while running")
    if (failure := failure_of(pod)) is not None:
        return move(State.FAILED, *failure, run=run_info(pod))
    if succeeded(pod):
        return move(State.COLLECTING, "Succeeded", "the main container exited 0; collecting its result")
    return NOTHING


def _lost(view: WorkloadView, move: Any, why: str) -> Decision:
    """A worker lost to the infrastructure is not the user's failure: re-queue while attempts remain."""
    assert view.spec is not None
    if view.status.attempts >= view.spec.max_attempts:
        return move(State.FAILED, "RetryLimitExceeded", f"{why}; {view.status.attempts} of "
                    f"{view.spec.max_attempts} attempts used")
    return move(State.ORPHANED, "PodLost", why)


def _collecting(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    if pod is None:
        return move(State.COMPLETED, "Completed", "the pod vanished before its result was collected")
    return move(State.COMPLETED, "Completed", "the result was collected", run=run_info(pod))


def _orphaned(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    return move(State.QUEUED, "Requeued", "the worker was lost; waiting for a new one")


def _serving(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    if pod is None or pod.deleting:
        return _lost(view, move, "the pod vanished while serving")
    if (failure := failure_of(pod)) is not None:
        return move(State.FAILED, *failure, run=run_info(pod))
    return NOTHING


def _stopping(view: WorkloadView, pod: PodSummary | None, move: Any) -> Decision:
    if pod is None or succeeded(pod):
        return move(State.COMPLETED, "Stopped", "the server stopped")
    if (failure := failure_of(pod)) is not None:
        return move(State.FAILED, *failure, run=run_info(pod))
    return NOTHING


_STEPS = {
    State.QUEUED: _queued,
    State.PREPARING: _preparing,
    State.RUNNING: _running,
    State.COLLECTING: _collecting,
    State.ORPHANED: _orphaned,
    State.SERVING: _serving,
    State.STOPPING: _stopping,
}
