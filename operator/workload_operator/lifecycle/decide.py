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
import enum
import hashlib
from collections.abc import Mapping
from typing import Any

import pydantic

from workload_operator.lifecycle.pods import PodSummary, parse_result
from workload_operator.lifecycle.reasons import ROUTINE, status_reason
from workload_operator.lifecycle.spec import InvalidSpec, WorkloadSpec, WorkloadType, parse_spec
from workload_operator.lifecycle.states import TERMINAL, State
from workload_operator.lifecycle.status import (
    ConditionStatus, ConditionType, RunInfo, WorkloadStatus, apply_transition, set_readiness, truncate,
)

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
    created: str = ""                   # creationTimestamp (RFC 3339 sorts as text)
    status_error: str = ""              # a status the operator did not write and cannot read (no schema here)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> WorkloadView:
        meta = body.get("metadata") or {}
        try:
            spec, spec_error = parse_spec(body.get("spec")), ""
        except InvalidSpec as exc:
            spec, spec_error = None, str(exc)
        try:
            status, status_error = WorkloadStatus.model_validate(body.get("status") or {}), ""
        except pydantic.ValidationError as exc:
            problems = [f"status.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
            status, status_error = WorkloadStatus(), "; ".join(problems)
        return cls(
            name=meta.get("name", ""), namespace=meta.get("namespace", ""), uid=meta.get("uid", ""),
            generation=meta.get("generation"),
            status=status, status_error=status_error,
            spec=spec, spec_error=spec_error,
            deleting=bool(meta.get("deletionTimestamp")),
            finalizers=tuple(meta.get("finalizers") or ()),
            resource_version=str(meta.get("resourceVersion", "")),
            created=meta.get("creationTimestamp", ""),
        )

    @property
    def has_finalizer(self) -> bool:
        return FINALIZER in self.finalizers

    @property
    def cancel_requested(self) -> bool:
        return self.deleting or (self.spec is not None and self.spec.cancel)

    @property
    def is_service(self) -> bool:
        return self.spec is not None and self.spec.type is WorkloadType.SERVICE


NAME_LIMIT = 253  # a pod's name is a DNS subdomain, as a Workload's is


def pod_name(workload: str, attempt: int) -> str:
    """``<workload>-<attempt>``: each attempt has its own name, so a lost pod is never mistaken for its successor.

    For a workload name near the limit, its tail gives way to a stable hash of the whole name, so that every
    Workload name the CRD accepts makes a valid pod name, and two long names never make the same one.
    """
    name = f"{workload}-{attempt}"
    if len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(workload.encode()).hexdigest()[:10]
    keep = NAME_LIMIT - len(f"-{digest}-{attempt}")
    return f"{workload[:keep].rstrip('-.')}-{digest}-{attempt}"


def service_name(view: WorkloadView) -> str:
    """The workload's name when it is a valid Service name (a DNS-1035 label), else one made from its uid."""
    name = view.name
    if len(name) <= 63 and name[:1].isalpha() and all(c.isalnum() or c == "-" for c in name) and name[-1] != "-":
        return name
    return f"wl-{view.uid[:8]}"


@dataclasses.dataclass(frozen=True)
class Policy:
    """Operator-wide settings that shape decisions (see `workload-operator run --help`)."""

    backoff_base: float = 10.0    # seconds before the first new attempt after a lost worker
    backoff_cap: float = 300.0    # the backoff doubles per attempt up to this
    max_active: int | None = None                # active workloads at once, in all namespaces served
    max_active_per_namespace: int | None = None  # active workloads at once, in each namespace
    force_delete_after: float = 30.0  # seconds past a pod's graceful deletion before it is deleted with grace 0

    @property
    def limits_admission(self) -> bool:
        return self.max_active is not None or self.max_active_per_namespace is not None

    def backoff(self, attempts: int) -> datetime.timedelta:
        doublings = min(max(attempts - 1, 0), 32)  # bounded: a hand-written attempts of 1100 must not overflow
        return datetime.timedelta(seconds=min(self.backoff_cap, self.backoff_base * 2 ** doublings))


@dataclasses.dataclass(frozen=True)
class Admission:
    """Where a queued workload stands in its queue (computed by the shell from all workloads; see queue.py)."""

    admitted: bool
    position: int      # 1-based, among the queued workloads of its scope
    queued: int
    active: int
    limit: int


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
    uid: str = ""   # the delete is bound to this pod: a newer one of the same name is left alone
    force: bool = False  # grace 0: the pod outlived its grace period (its node is gone, nothing will confirm)


@dataclasses.dataclass(frozen=True)
class CreateService:
    """The ClusterIP Service in front of a service workload's pods (one for all attempts)."""


@dataclasses.dataclass(frozen=True)
class DeleteService:
    pass


@dataclasses.dataclass(frozen=True)
class DeleteWorkload:
    """ttlSecondsAfterFinished has passed."""


Action = AddFinalizer | RemoveFinalizer | CreatePod | DeletePod | CreateService | DeleteService | DeleteWorkload


@dataclasses.dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...] = ()            # to run first
    status: WorkloadStatus | None = None        # then the new status to write; None: no status change
    recheck_at: datetime.datetime | None = None  # decide again then, even if no event comes

    def __bool__(self) -> bool:
        return self.status is not None or bool(self.actions)


NOTHING = Decision()


def _later(decision: Decision, at: datetime.datetime | None) -> Decision:
    """The decision, to be checked again no later than ``at``."""
    if at is None or (decision.recheck_at is not None and decision.recheck_at <= at):
        return decision
    return dataclasses.replace(decision, recheck_at=at)


# --- how pods end -------------------------------------------------------------------------------


def loss_of(pod: PodSummary | None) -> tuple[str, str] | None:
    """The (reason, message) of a worker lost to the infrastructure, not the user's failure, or None:

    1. the pod is gone, or being deleted, and not by the operator → PodDeleted;
    2. the kubelet evicted it (node pressure) → Evicted;
    3. it carries DisruptionTarget=True (preemption, eviction API, taint manager) → its reason;
    4. the kubelet stopped it for a node shutdown (reason Terminated) → NodeShutdown;
    5. its node stopped reporting (Ready=Unknown, or reason NodeLost) → NodeLost.
    """
    if pod is None or pod.deleting:
        return "PodDeleted", "the pod was deleted by someone else"
    if pod.reason == "Evicted":
        return "Evicted", pod.message or "the kubelet evicted the pod"
    if pod.disruption:
        return status_reason(pod.disruption, pod.message or f"the pod was disrupted ({pod.disruption})",
                             fallback="Disrupted")
    if pod.reason == "Terminated":
        return status_reason(pod.reason, pod.message or "the node shut down", fallback="NodeShutdown")
    if pod.ready is None or pod.reason == "NodeLost":
        return "NodeLost", pod.message or "the pod's node stopped reporting"
    return None


def failure_of(pod: PodSummary) -> tuple[str, str] | None:
    """The (reason, message) of a pod that failed, or None. Criteria, in order:

    1. the main container was OOM-killed → OOMKilled;
    2. the main container exited non-zero → ExitCode, with the code and its last words;
    3. the pod failed otherwise (e.g. DeadlineExceeded, OutOfnvidia.com/gpu) → the pod's reason as a status
       reason (reasons.py: OutOfResources for the latter), or PodFailed.
    """
    main = pod.main
    if main.terminated and main.exit_code not in (0, None):
        words = f": {main.message.strip()}" if main.message.strip() else ""
        if main.reason == "OOMKilled":
            return "OOMKilled", f"the main container ran out of memory (exit code {main.exit_code}){words}"
        return "ExitCode", f"the main container exited with code {main.exit_code}{words}"
    if pod.phase == "Failed":
        return status_reason(pod.reason, pod.message or f"pod {pod.name} failed", fallback="PodFailed")
    return None


def succeeded(pod: PodSummary) -> bool:
    """The main container exited 0 (the pod Succeeded, or sidecars still run)."""
    return (pod.main.terminated and pod.main.exit_code == 0) or pod.phase == "Succeeded"


SIGTERM_EXIT = 143  # 128 + SIGTERM: a server that stops on the graceful-termination signal


def stopped_cleanly(pod: PodSummary) -> bool:
    return succeeded(pod) or (pod.main.terminated and pod.main.exit_code == SIGTERM_EXIT)


def started(pod: PodSummary) -> bool:
    return pod.main.running or pod.main.terminated or pod.phase in ("Running", "Succeeded")


def run_info(pod: PodSummary) -> RunInfo:
    return RunInfo(
        pod=pod.name, exit_code=pod.main.exit_code, started_at=pod.main.started_at,
        finished_at=pod.main.finished_at, result=parse_result(pod.main.message) if succeeded(pod) else None,
    )


# --- the decision -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Step:
    """What a state's step function gets: the view, its pod, the time, and how to move."""

    view: WorkloadView
    pod: PodSummary | None
    now: datetime.datetime
    policy: Policy
    admission: Admission | None
    others: tuple[PodSummary, ...] = ()   # the workload's pods of other attempts (e.g. made, never committed)
    create_not_before: datetime.datetime | None = None  # a refused creation is not tried again before this

    def creation_backoff(self) -> Decision | None:
        """Wait, when the last creation was refused and its backoff is not over (whatever event comes meanwhile)."""
        if self.create_not_before is not None and self.now < self.create_not_before:
            return Decision(recheck_at=self.create_not_before)
        return None

    @property
    def spec(self) -> WorkloadSpec:
        assert self.view.spec is not None
        return self.view.spec

    @property
    def status(self) -> WorkloadStatus:
        return self.view.status

    def move(self, to: State, reason: str, message: str = "", *actions: Action, **changes: Any) -> Decision:
        new = apply_transition(self.status, to, reason=reason, message=message, now=self.now,
                               generation=self.view.generation)
        return Decision(actions=actions, status=new.model_copy(update=changes) if changes else new)

    def note(self, reason: str, message: str) -> Decision:
        """Say why the workload waits, without a transition; nothing if it already says so."""
        message = truncate(message)
        if (self.status.reason, self.status.message) == (reason, message):
            return NOTHING
        return Decision(status=self.status.model_copy(update={"reason": reason, "message": message}))

    def delete_pod(self) -> tuple[Action, ...]:
        return (DeletePod(self.pod.name, self.pod.uid),) if self.pod is not None and not self.pod.deleting else ()

    def delete_all_pods(self) -> tuple[Action, ...]:
        """Stopping for good: the current pod and any other the workload still has; a pod whose graceful
        deletion is overdue is deleted with grace 0 (see ``overdue``)."""
        pods = (*((self.pod,) if self.pod is not None else ()), *self.others)
        return (*(DeletePod(p.name, p.uid) for p in pods if not p.deleting),
                *(DeletePod(p.name, p.uid, force=True) for p in pods if self.overdue(p)))

    def force_due(self, pod: PodSummary) -> datetime.datetime | None:
        """When a terminating pod is given up on: its graceful deletion due, plus the policy's margin."""
        if not pod.deleting or pod.deletion_due is None:
            return None
        return pod.deletion_due + datetime.timedelta(seconds=self.policy.force_delete_after)

    def overdue(self, pod: PodSummary) -> bool:
        """The pod should be gone by now: its kubelet has not confirmed the deletion (a lost node never will)."""
        due = self.force_due(pod)
        return due is not None and self.now >= due

    def next_force_due(self) -> datetime.datetime | None:
        """When to look again at pods going away: the next one's force due time, or, once all are forced, one
        margin later (a pod with someone else's finalizer outlives even a delete with grace 0)."""
        pods = (*((self.pod,) if self.pod is not None else ()), *self.others)
        dues = [due for p in pods if (due := self.force_due(p)) is not None]
        if not dues:
            return None
        later = [due for due in dues if due > self.now]
        return min(later) if later else self.now + datetime.timedelta(seconds=self.policy.force_delete_after)


def decide(view: WorkloadView, pod: PodSummary | None, now: datetime.datetime, *,
           policy: Policy = Policy(), admission: Admission | None = None,
           others: tuple[PodSummary, ...] = (), create_not_before: datetime.datetime | None = None) -> Decision:
    """The next step for ``view`` given its current attempt's ``pod`` (None: no such pod).

    ``admission`` says whether a queued workload may start now; None means there is no limit.
    ``others`` are its pods of other attempts: a pod is created before the status that counts it, so
    one may exist that the status never named; stopping or deleting the workload removes them too.
    ``create_not_before``: the API server refused the last pod or Service; create none before then.
    """
    step = _Step(view, pod, now, policy, admission, others, create_not_before)
    state = view.status.state
    # A status written by hand that the schema would have refused (only without one): touch nothing.
    if view.status_error:
        return NOTHING

    # Finished (or never started) and being deleted: clean up and let go at once.
    if view.deleting and (state is None or state in TERMINAL):
        if not view.has_finalizer:
            return NOTHING
        return Decision(actions=(*step.delete_all_pods(), *((DeleteService(),) if view.is_service else ()),
                                 RemoveFinalizer()))
    if state in TERMINAL:
        return _finished(step)
    # The finalizer goes on before anything is created that deletion must clean up.
    if not view.has_finalizer and not view.deleting:
        return Decision(actions=(AddFinalizer(),))
    if state is None:
        return step.move(State.QUEUED, "Created", "accepted, waiting for a worker")
    if view.spec is None:
        if state is State.QUEUED:
            return step.move(State.FAILED, "InvalidSpec", view.spec_error)
        return NOTHING  # the pod runs the spec that was valid; a later bad edit changes nothing
    if view.cancel_requested:
        return _cancel(step)
    if (deadline := _deadline(step)) is not None and now >= deadline:
        return step.move(State.FAILED, "DeadlineExceeded",
                         f"still active {step.spec.active_deadline_seconds}s after it started", *step.delete_pod())
    return _later(_STEPS[state](step), deadline)


def _deadline(step: _Step) -> datetime.datetime | None:
    """activeDeadlineSeconds counts from the first start (status.startTime), across attempts."""
    seconds, started_at = step.spec.active_deadline_seconds, step.status.start_time
    if seconds is None or started_at is None or step.status.state in (State.QUEUED, State.ORPHANED, State.PREPARING):
        return None
    return started_at + datetime.timedelta(seconds=seconds)


def _finished(step: _Step) -> Decision:
    ttl = step.spec.ttl_seconds_after_finished if step.view.spec is not None else None
    if ttl is None or step.status.completion_time is None or step.view.deleting:
        return NOTHING
    expires = step.status.completion_time + datetime.timedelta(seconds=ttl)
    return Decision(actions=(DeleteWorkload(),)) if step.now >= expires else Decision(recheck_at=expires)


def _cancel(step: _Step) -> Decision:
    """Stop gracefully: a service goes through stopping; anything else waits for its pod to go, then ends."""
    why = "the Workload was deleted" if step.view.deleting else "spec.cancel was set"
    state = step.status.state
    if state is State.SERVING:
        return step.move(State.STOPPING, "Stopping", why, *step.delete_pod())
    if state is State.STOPPING:
        return _stopping(step)
    if step.pod is not None or step.others:  # delete them, then wait until they are gone (bounded: see overdue)
        return _later(Decision(actions=step.delete_all_pods()), step.next_force_due())
    if state is State.ORPHANED:  # orphaned only leads back to the queue; cancel from there
        return step.move(State.QUEUED, "Cancelling", why)
    return step.move(State.CANCELLED, "Deleted" if step.view.deleting else "Cancelled", why)


def _queued(step: _Step) -> Decision:
    status, spec = step.status, step.spec
    if status.attempts >= spec.max_attempts:
        return step.move(State.FAILED, "RetryLimitExceeded", f"{status.attempts} of {spec.max_attempts} attempts used")
    last = status.history[-1] if status.history else None
    if last is not None and last.from_state is State.ORPHANED:
        not_before = last.at + step.policy.backoff(status.attempts)
        if step.now < not_before:
            return Decision(recheck_at=not_before)
    if step.admission is not None and not step.admission.admitted:
        a = step.admission
        return step.note("WaitingForCapacity", f"position {a.position} of {a.queued} in the queue; "
                                               f"{a.active} of {a.limit} workloads active")
    if (waiting := step.creation_backoff()) is not None:
        return waiting
    attempt = status.attempts + 1
    name = pod_name(step.view.name, attempt)
    changes: dict[str, Any] = {"attempts": attempt, "run": RunInfo(pod=name)}
    actions: tuple[Action, ...] = (CreatePod(attempt),)
    if step.view.is_service:
        actions = (CreateService(), *actions)
        changes["endpoint"] = f"{service_name(step.view)}.{step.view.namespace}.svc:{spec.port}"
    return step.move(State.PREPARING, "PodCreated", f"pod {name} created", *actions, **changes)


def _preparing(step: _Step) -> Decision:
    status, spec, pod = step.status, step.spec, step.pod
    if pod is None:
        if status.attempts >= spec.max_attempts:
            return step.move(State.FAILED, "RetryLimitExceeded",
                             f"the pod vanished and {status.attempts} of {spec.max_attempts} attempts are used")
        if (waiting := step.creation_backoff()) is not None:
            return waiting
        name = pod_name(step.view.name, status.attempts + 1)
        recreated = status.model_copy(update={
            "attempts": status.attempts + 1, "reason": "PodRecreated",
            "message": f"the pod vanished while preparing; pod {name} created", "run": RunInfo(pod=name),
        })
        return Decision(actions=(CreatePod(status.attempts + 1),), status=recreated)
    if (failure := failure_of(pod)) is not None:
        return step.move(State.FAILED, *failure, run=run_info(pod))
    if started(pod):
        return step.move(State.RUNNING, "Started", f"pod {pod.name} is running")
    timeout = spec.preparing_timeout_seconds
    # Counted from when it entered preparing (unknown only in a status written by hand with no history: no timeout).
    since = status.history[-1].at if status.history else None
    deadline = since + datetime.timedelta(seconds=timeout) if since is not None and timeout is not None else None
    if deadline is not None and step.now >= deadline:
        return step.move(State.FAILED, "PreparingTimeout",
                         f"the pod did not start within {timeout}s ({pod.main.reason or pod.unscheduled or pod.phase})",
                         *step.delete_pod())
    return _later(_why_waiting(step, pod), deadline)


def _why_waiting(step: _Step, pod: PodSummary) -> Decision:
    """Say what a person can act on while the pod has not started: why its main container waits (an image that
    cannot be pulled, a missing Secret), else why it is not scheduled. Routine steps are not written."""
    if pod.main.reason and pod.main.reason not in ROUTINE:
        return step.note(*status_reason(pod.main.reason, pod.main.message or pod.main.reason, fallback="Waiting"))
    if pod.unscheduled:
        return step.note(*status_reason(pod.unscheduled, pod.unscheduled_message or pod.unscheduled,
                                        fallback="Unschedulable"))
    return NOTHING


def _lost_or_failed(step: _Step) -> Decision | None:
    """While the pod should be running: a lost worker is re-queued, a failed one ends the workload."""
    if (loss := loss_of(step.pod)) is not None:
        return _lost(step, *loss)
    assert step.pod is not None
    if (failure := failure_of(step.pod)) is not None:
        return step.move(State.FAILED, *failure, run=run_info(step.pod))
    return None


def _running(step: _Step) -> Decision:
    if (ended := _lost_or_failed(step)) is not None:
        return ended
    pod = step.pod
    assert pod is not None
    if succeeded(pod):
        return step.move(State.COLLECTING, "Succeeded", "the main container exited 0; collecting its result")
    if step.view.is_service and pod.ready:
        return step.move(State.SERVING, "Ready", f"serving at {step.status.endpoint}")
    return NOTHING


def _lost(step: _Step, reason: str, message: str) -> Decision:
    """A worker lost to the infrastructure is not the user's failure: re-queue while attempts remain."""
    status, spec = step.status, step.spec
    if status.attempts >= spec.max_attempts:
        return step.move(State.FAILED, "RetryLimitExceeded",
                         f"{message}; {status.attempts} of {spec.max_attempts} attempts used", *step.delete_pod())
    return step.move(State.ORPHANED, reason, message, *step.delete_pod())


def _collecting(step: _Step) -> Decision:
    if step.pod is None:
        return step.move(State.COMPLETED, "Completed", "the pod vanished before its result was collected")
    return step.move(State.COMPLETED, "Completed", "the result was collected", run=run_info(step.pod))


def _orphaned(step: _Step) -> Decision:
    at = step.now + step.policy.backoff(step.status.attempts)
    return step.move(State.QUEUED, "Requeued", f"the worker was lost; attempt {step.status.attempts + 1} "
                                               f"not before {at.strftime('%H:%M:%S')} UTC")


def _serving(step: _Step) -> Decision:
    if (ended := _lost_or_failed(step)) is not None:
        return ended
    pod = step.pod
    assert pod is not None
    if pod.main.terminated:  # exited 0 on its own: it is stopping, not serving
        return step.move(State.STOPPING, "ServerExited", "the server exited by itself")
    ready = step.status.condition(ConditionType.READY)
    was_ready = ready is not None and ready.status == ConditionStatus.TRUE
    if bool(pod.ready) != was_ready:
        reason, message = ("Ready", "the server is ready again") if pod.ready else (
            "NotReady", "the server stopped answering its readiness probe")
        return Decision(status=set_readiness(step.status, bool(pod.ready), reason=reason, message=message,
                                             now=step.now, generation=step.view.generation))
    return NOTHING


def _stopping(step: _Step) -> Decision:
    pod = step.pod
    if pod is None or stopped_cleanly(pod):
        run = {"run": run_info(pod)} if pod is not None else {}
        return step.move(State.COMPLETED, "Stopped", "the server stopped", *step.delete_pod(), **run)
    if (failure := failure_of(pod)) is not None:
        return step.move(State.FAILED, *failure, *step.delete_pod(), run=run_info(pod))
    if step.overdue(pod):  # nothing will ever confirm that it stopped: give up on it, and say so
        grace = f"{pod.deletion_due:%H:%M:%S} UTC + {step.policy.force_delete_after:g}s"
        return step.move(State.FAILED, "TerminationTimeout",
                         f"pod {pod.name} did not stop by {grace} (its node may be gone); deleted with grace 0",
                         DeletePod(pod.name, pod.uid, force=True))
    return _later(NOTHING, step.force_due(pod))


_STEPS = {
    State.QUEUED: _queued,
    State.PREPARING: _preparing,
    State.RUNNING: _running,
    State.COLLECTING: _collecting,
    State.ORPHANED: _orphaned,
    State.SERVING: _serving,
    State.STOPPING: _stopping,
}


class CreationRefusal(enum.Enum):
    """Why the API server would not create a pod or Service, as far as the lifecycle cares."""

    INVALID = "InvalidSpec"             # 422 Invalid: the same object will never be accepted
    NAME_CONFLICT = "NameConflict"      # the name is taken by an object that is not this workload's own
    REFUSED = "PodCreationFailed"       # quota, admission, a terminating namespace: it may pass later


def creation_failed(view: WorkloadView, refusal: CreationRefusal, message: str, now: datetime.datetime,
                    policy: Policy = Policy(), failures: int = 1) -> Decision:
    """A pod (or Service) could not be created.

    An invalid object ends the workload (``failed``, InvalidSpec, the API server's words): retrying
    cannot help. Anything else keeps the state and the attempt count, says why, and tries again after a
    backoff that grows with ``failures``, the refusals in a row.
    """
    if refusal is CreationRefusal.INVALID:
        return _Step(view, None, now, policy, None).move(State.FAILED, refusal.value, message)
    retry = now + policy.backoff(failures)
    status, message = view.status, truncate(message)
    if (status.reason, status.message) == (refusal.value, message):
        return Decision(recheck_at=retry)
    return Decision(status=status.model_copy(update={"reason": refusal.value, "message": message}),
                    recheck_at=retry)


RECONCILE_FAILED = "ReconcileFailed"


def reconcile_failed(view: WorkloadView, message: str, now: datetime.datetime) -> Decision:
    """The operator could not take the workload's next step (a write the API server refused, or a bug in the
    operator): say so while it is active; a finished workload keeps the reason it finished with."""
    if view.status.state is None or view.status.state in TERMINAL:
        return NOTHING
    return _Step(view, None, now, Policy(), None).note(RECONCILE_FAILED, message)
