"""decide(): from what the operator sees (a Workload, its pods, the time) to the next single step.

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

Deletes go the other way: a transition that ends an attempt (failed, orphaned, collecting on index 0's
success, stopping) is written first, and the state it leads to deletes the pods that still run (a finished
workload, whatever still runs; queued, the pods of earlier attempts; stopping, the server's pods). A pod the
operator deleted itself is so never seen before the status that explains it, where it would look lost.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from workload_operator.lifecycle.gang import (
    EVICTED_BY_KUEUE, Gang, about, attempt_pod_names, failure_of, held_by_kueue, holds_resources, started, succeeded,
    summarize_pods,
)
from workload_operator.lifecycle.pods import PodSummary, parse_result
from workload_operator.lifecycle.reasons import ROUTINE, status_reason
from workload_operator.lifecycle.spec import InvalidSpec, SuccessPolicy, WorkloadSpec, WorkloadType, parse_spec
from workload_operator.lifecycle.states import TERMINAL, State
from workload_operator.lifecycle.status import (
    ConditionStatus, ConditionType, PodCounts, RunInfo, WorkloadStatus, apply_transition, set_readiness, truncate,
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

    @property
    def replicas(self) -> int:
        return self.spec.replicas if self.spec is not None else 1

    def gang(self, pods: Iterable[PodSummary]) -> Gang:
        """Its pods, summarized against its current attempt."""
        return summarize_pods(self.name, self.status.attempts, self.replicas, pods)



def service_name(view: WorkloadView) -> str:
    """The workload's name when it is a valid Service name (a DNS-1035 label), else one made from its uid."""
    name = view.name
    if len(name) <= 63 and name[:1].isalpha() and all(c.isalnum() or c == "-" for c in name) and name[-1] != "-":
        return name
    return f"wl-{view.uid[:8]}"


def headless_service_name(view: WorkloadView) -> str:
    """The headless Service that gives each pod of a gang its DNS name: the workload's own Service name for a
    batch gang; a service workload's Service fronts its leader, so its gang's headless one is ``<that>-gang``."""
    name = service_name(view)
    if not view.is_service:
        return name
    return f"{name}-gang" if len(name) <= 58 else f"wl-{view.uid[:8]}-gang"


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
    index: int = 0   # its place in the attempt's gang (0 for a single pod)


@dataclasses.dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str = ""   # the delete is bound to this pod: a newer one of the same name is left alone
    force: bool = False  # grace 0: the pod outlived its grace period (its node is gone, nothing will confirm)


@dataclasses.dataclass(frozen=True)
class RetirePod:
    """A finished pod of a finished Workload, its result recorded: it stays for its logs, out of the operator's
    watch (a label takes it out), so that neither the index nor a restart's listing holds it."""

    name: str
    uid: str = ""   # bound to this pod, as a delete is


@dataclasses.dataclass(frozen=True)
class DeleteRetiredPods:
    """The current attempt's pods that the watch does not show (retired ones): each read by name, and deleted if
    the Workload controls it. Earlier attempts' pods were gone before the current one started."""

    names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class CreateService:
    """The ClusterIP Service in front of a service workload's pod (of index 0), or the headless Service of a gang's
    pods (one for all attempts)."""

    headless: bool = False


@dataclasses.dataclass(frozen=True)
class DeleteService:
    headless: bool = False


@dataclasses.dataclass(frozen=True)
class DeleteWorkload:
    """ttlSecondsAfterFinished has passed."""


Action = (AddFinalizer | RemoveFinalizer | CreatePod | DeletePod | RetirePod | DeleteRetiredPods | CreateService
          | DeleteService | DeleteWorkload)


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


SIGTERM_EXIT = 143  # 128 + SIGTERM: a server that stops on the graceful-termination signal


def stopped_cleanly(pod: PodSummary) -> bool:
    return succeeded(pod) or (pod.main.terminated and pod.main.exit_code == SIGTERM_EXIT)


def run_info(pod: PodSummary) -> RunInfo:
    return RunInfo(
        pod=pod.name, exit_code=pod.main.exit_code, started_at=pod.main.started_at,
        finished_at=pod.main.finished_at, result=parse_result(pod.main.message) if succeeded(pod) else None,
    )


# --- the decision -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Step:
    """What a state's step function gets: the view, its pods summarized, the time, and how to move."""

    view: WorkloadView
    gang: Gang
    now: datetime.datetime
    policy: Policy
    admission: Admission | None
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

    def attempts_used(self) -> int:
        """The attempts counted against maxAttempts: those Kueue stopped are not the user's."""
        return self.status.attempts - self.status.evictions

    @property
    def status(self) -> WorkloadStatus:
        return self.view.status

    def move(self, to: State, reason: str, message: str = "", *actions: Action, **changes: Any) -> Decision:
        new = apply_transition(self.status, to, reason=reason, message=message, now=self.now,
                               generation=self.view.generation)
        return Decision(actions=actions, status=self.counted(new.model_copy(update=changes), actions))

    def note(self, reason: str, message: str) -> Decision:
        """Say why the workload waits, without a transition; nothing if it already says so."""
        message = truncate(message)
        if (self.status.reason, self.status.message) == (reason, message):
            return NOTHING
        return Decision(status=self.counted(self.status.model_copy(update={"reason": reason, "message": message})))

    def counted(self, status: WorkloadStatus, actions: tuple[Action, ...] = ()) -> WorkloadStatus:
        """``status`` with the pod counts as they stand once ``actions`` ran: they ride along with each write the
        workload makes anyway, and never cost one of their own."""
        created = sum(isinstance(action, CreatePod) for action in actions)
        if created:  # a new attempt: its pods are all waiting to start
            counts = PodCounts(active=created)
        else:  # a finished workload's pods that still run are deleted next: they are counted as gone
            leaving = {a.name for a in actions if isinstance(a, DeletePod)}
            if status.state in TERMINAL:
                leaving |= {p.name for p in self.gang.members.values() if holds_resources(p)}
            counts = self.gang.counts(leaving=leaving)
        return status.model_copy(update={"pods": counts, "pods_ready": f"{counts.ready}/{self.gang.size}"})

    def delete(self, pods: Iterable[PodSummary]) -> tuple[Action, ...]:
        """Delete ``pods``; those whose graceful deletion is overdue again, with grace 0 (see ``overdue``)."""
        pods = tuple(pods)
        return (*(DeletePod(p.name, p.uid) for p in pods if not p.deleting),
                *(DeletePod(p.name, p.uid, force=True) for p in pods if self.overdue(p)))

    def delete_all(self) -> tuple[Action, ...]:
        """Stopping for good: every pod the workload has, of this attempt or any other."""
        return self.delete(self.gang.pods)

    def delete_retired(self) -> tuple[Action, ...]:
        """Delete the current attempt's pods that the watch does not show: those retired, if they are still there."""
        shown = {pod.name for pod in self.gang.pods}
        names = tuple(name for name in self.gang.names if name not in shown) if self.status.attempts else ()
        return (DeleteRetiredPods(names),) if names else ()

    def force_due(self, pod: PodSummary) -> datetime.datetime | None:
        """When a terminating pod is given up on: its graceful deletion due, plus the policy's margin.

        A pod deleted with grace 0 already is due again only if it is still there a margin later with no finalizer
        to hold it. The API server deletes in two steps (it writes deletionTimestamp and the grace period, then
        removes the object); a client gone between them, such as a leader killed mid-request, leaves the pod
        half-deleted, and only another DELETE completes it (a kubelet or the pod garbage collector would; neither
        may run). A pod removed at once also shows grace 0 until the watch shows it gone: the margin, counted from
        the end of the second deletionTimestamp names (it is written to the second), keeps that from a second DELETE.
        """
        if not pod.deleting or pod.deletion_due is None or (pod.forced and pod.finalizers):
            return None
        written_to_the_second = 1 if pod.forced else 0
        return pod.deletion_due + datetime.timedelta(seconds=self.policy.force_delete_after + written_to_the_second)

    def overdue(self, pod: PodSummary) -> bool:
        """The pod should be gone by now: its kubelet has not confirmed the deletion (a lost node never will)."""
        due = self.force_due(pod)
        return due is not None and self.now >= due

    def next_force_due(self, pods: Iterable[PodSummary] | None = None) -> datetime.datetime | None:
        """When to look again at pods going away (by default all): the next one's force due time, or, once every
        due time has passed (their deletes go now), one margin later."""
        dues = [due for p in (self.gang.pods if pods is None else pods) if (due := self.force_due(p)) is not None]
        if not dues:
            return None
        later = [due for due in dues if due > self.now]
        return min(later) if later else self.now + datetime.timedelta(seconds=self.policy.force_delete_after)

    def wait_for_deletes(self, pods: Iterable[PodSummary] | None = None) -> Decision:
        """Delete the pods (by default all) and wait until they are gone; their watch events bring it back."""
        pods = self.gang.pods if pods is None else tuple(pods)
        return _later(Decision(actions=self.delete(pods)), self.next_force_due(pods))


def decide(view: WorkloadView, pods: Iterable[PodSummary], now: datetime.datetime, *,
           policy: Policy = Policy(), admission: Admission | None = None,
           create_not_before: datetime.datetime | None = None) -> Decision:
    """The next step for ``view`` given all its ``pods`` (those the index holds, of any attempt).

    ``admission`` says whether a queued workload may start now; None means there is no limit.
    The pods may include some of other attempts: a pod is created before the status that counts it, so
    one may exist that the status never named; stopping or deleting the workload removes them too.
    ``create_not_before``: the API server refused the last pod or Service; create none before then.
    """
    step = _Step(view, view.gang(pods), now, policy, admission, create_not_before)
    state = view.status.state
    # A status written by hand that the schema would have refused (only without one): touch nothing.
    if view.status_error:
        return NOTHING

    # Finished (or never started) and being deleted: clean up and let go at once.
    if view.deleting and (state is None or state in TERMINAL):
        if not view.has_finalizer:
            return NOTHING
        services = (*((DeleteService(),) if view.is_service else ()),
                    *((DeleteService(headless=True),) if view.replicas > 1 else ()))
        return Decision(actions=(*step.delete_all(), *step.delete_retired(), *services, RemoveFinalizer()))
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
        return NOTHING  # the pods run the spec that was valid; a later bad edit changes nothing
    if view.cancel_requested:
        return _cancel(step)
    if (deadline := _deadline(step)) is not None and now >= deadline:
        return step.move(State.FAILED, "DeadlineExceeded",
                         f"still active {step.spec.active_deadline_seconds}s after it started")
    return _later(_STEPS[state](step), deadline)


def _deadline(step: _Step) -> datetime.datetime | None:
    """activeDeadlineSeconds counts from the first start (status.startTime), across attempts."""
    seconds, started_at = step.spec.active_deadline_seconds, step.status.start_time
    if seconds is None or started_at is None or step.status.state in (State.QUEUED, State.ORPHANED, State.PREPARING):
        return None
    return started_at + datetime.timedelta(seconds=seconds)


def _finished(step: _Step) -> Decision:
    """Finished: the pods that still run (an attempt ended by a failure, a deadline, index 0's success) are
    deleted; finished ones stay, for their logs, retired from the operator's watch. Then the TTL, if any."""
    stop = step.delete(p for p in step.gang.pods if holds_resources(p) or step.overdue(p))
    retire = tuple(RetirePod(p.name, p.uid) for p in step.gang.pods
                   if p.phase in ("Succeeded", "Failed") and not p.deleting)
    cleanup = _later(Decision(actions=(*stop, *retire)), step.next_force_due())
    ttl = step.spec.ttl_seconds_after_finished if step.view.spec is not None else None
    if ttl is None or step.status.completion_time is None or step.view.deleting:
        return cleanup
    expires = step.status.completion_time + datetime.timedelta(seconds=ttl)
    return Decision(actions=(DeleteWorkload(),)) if step.now >= expires else _later(cleanup, expires)


def _cancel(step: _Step) -> Decision:
    """Stop gracefully: a service goes through stopping; anything else waits for its pods to go, then ends."""
    why = "the Workload was deleted" if step.view.deleting else "spec.cancel was set"
    state = step.status.state
    if state is State.SERVING:
        return step.move(State.STOPPING, "Stopping", why)
    if state is State.STOPPING:
        return _stopping(step)
    if step.gang.pods:  # delete them, then wait until they are gone (bounded: see overdue)
        return step.wait_for_deletes()
    if state is State.ORPHANED:  # orphaned only leads back to the queue; cancel from there
        return step.move(State.QUEUED, "Cancelling", why)
    return step.move(State.CANCELLED, "Deleted" if step.view.deleting else "Cancelled", why)


def _next_attempt(step: _Step) -> tuple[tuple[str, ...], tuple[Action, ...], dict[str, Any]]:
    """The next attempt: its pods' names, the actions that create them all (in index order), and its status."""
    attempt, replicas = step.status.attempts + 1, step.view.replicas
    names = attempt_pod_names(step.view.name, attempt, replicas)
    return names, tuple(CreatePod(attempt, index) for index in range(replicas)), {"attempts": attempt, "run": RunInfo(pod=names[0])}


def _created(names: tuple[str, ...]) -> str:
    return f"pod {names[0]} created" if len(names) == 1 else f"{len(names)} pods created: {names[0]} … {names[-1]}"


WAITING_FOR_ADMISSION = "WaitingForAdmission"  # the attempt's pods exist, held by Kueue's scheduling gates
REQUEUED_BY_KUEUE = "RequeuedByKueue"


def _queued(step: _Step) -> Decision:
    if step.spec.queue_name is not None and step.status.reason == WAITING_FOR_ADMISSION:
        return _held_by_kueue(step)
    return _next_attempt_when_due(step)


def _next_attempt_when_due(step: _Step) -> Decision:
    """Start the next attempt, unless attempts are used up, the last one's pods are still going, its backoff
    runs, or the operator's queue says wait."""
    status, spec = step.status, step.spec
    if step.attempts_used() >= spec.max_attempts:
        return step.move(State.FAILED, "RetryLimitExceeded", f"{status.attempts} of {spec.max_attempts} attempts used")
    names, actions, changes = _next_attempt(step)
    # The pods of earlier attempts (a lost gang) go at once, and before the next attempt starts: the new ones
    # never share a hostname, or a GPU, with them.
    if leftovers := [p for p in step.gang.pods if p.name not in names]:
        return step.wait_for_deletes(leftovers)
    last = status.history[-1] if status.history else None
    if last is not None and last.from_state is State.ORPHANED and last.reason != REQUEUED_BY_KUEUE:
        not_before = last.at + step.policy.backoff(status.attempts)
        if step.now < not_before:
            return Decision(recheck_at=not_before)
    if spec.queue_name is None and step.admission is not None and not step.admission.admitted:
        a = step.admission
        return step.note("WaitingForCapacity", f"position {a.position} of {a.queued} in the queue; "
                                               f"{a.active} of {a.limit} workloads active")
    if (waiting := step.creation_backoff()) is not None:
        return waiting
    if step.view.replicas > 1:
        actions = (CreateService(headless=True), *actions)
    if step.view.is_service:
        actions = (CreateService(), *actions)
        changes["endpoint"] = f"{service_name(step.view)}.{step.view.namespace}.svc:{spec.port}"
    if spec.queue_name is not None:  # Kueue admits the attempt: its pods are made now, and held until then
        waiting = status.model_copy(update={**changes, "reason": WAITING_FOR_ADMISSION,
                                             "message": _waiting_in(spec.queue_name, f"; {_created(names)}")})
        return Decision(actions=actions, status=step.counted(waiting, actions))
    return step.move(State.PREPARING, "PodCreated" if len(names) == 1 else "PodsCreated", _created(names),
                     *actions, **changes)


def _waiting_in(queue: str, more: str = "") -> str:
    return f"waiting for admission by Kueue in LocalQueue {queue}{more}"


def _held_by_kueue(step: _Step) -> Decision:
    """The attempt's pods exist and Kueue decides when they run: queued while any is held by its gates, then
    preparing (the preparing timeout counts from there). A pod lost meanwhile starts the attempt over."""
    gang, queue = step.gang, step.spec.queue_name
    assert queue is not None
    if gang.loss is not None:  # all of it goes; then a new attempt, in a new pod group (Kueue never admits a
        if gang.members:        # group it has finished)
            return step.wait_for_deletes(gang.members.values())
        return _next_attempt_when_due(step)
    if any(held_by_kueue(pod) for pod in gang.members.values()):
        # Said when the pods were made. Kueue tells why it waits on its own Workload, not on the pods (their
        # PodScheduled condition only says that they are gated): `kubectl describe workloads.kueue.x-k8s.io`.
        return NOTHING
    return step.move(State.PREPARING, "Admitted", f"admitted by Kueue (LocalQueue {queue})")


POD_LOST = "PodLost"  # a pod lost while preparing: noted while the rest of the gang is deleted


def _preparing(step: _Step) -> Decision:
    status, spec, gang = step.status, step.spec, step.gang
    # A pod lost before the run started (it vanished, was evicted, its node stopped reporting): no work is lost
    # yet and preparing cannot be orphaned, so the attempt starts over as a whole gang, once the old one is gone.
    if (loss := gang.loss) is not None:
        vanished = about(gang.size, gang.names[gang.missing[0]], "the pod vanished") if gang.missing else loss.message
        if status.reason == POD_LOST and status.message:  # noted while the rest went: they are missing too now
            vanished = status.message
        if step.attempts_used() >= spec.max_attempts:
            return step.move(State.FAILED, "RetryLimitExceeded",
                             f"{vanished} and {status.attempts} of {spec.max_attempts} attempts are used")
        if gang.members:  # the rest of the gang goes first; which pod was lost is noted now, while it can be told
            going = step.wait_for_deletes(gang.members.values())
            # A lone pod that someone else is deleting (the API server writes its deletionTimestamp even when it
            # removes the pod at once) goes by itself: no other pod to tell it from, so no write of its own.
            if status.reason == POD_LOST or (gang.size == 1 and not going.actions):
                return going
            noted = status.model_copy(update={"reason": POD_LOST, "message": truncate(vanished)})
            return dataclasses.replace(going, status=step.counted(noted, going.actions))
        if (waiting := step.creation_backoff()) is not None:
            return waiting
        names, actions, changes = _next_attempt(step)
        recreated = status.model_copy(update={
            **changes, "reason": "PodRecreated", "message": f"{vanished} while preparing; {_created(names)}",
        })
        return Decision(actions=actions, status=step.counted(recreated, actions))
    if (failure := gang.failure) is not None:
        assert failure.pod is not None
        return step.move(State.FAILED, failure.reason, failure.message, run=run_info(failure.pod))
    if gang.started == gang.size:
        running = f"pod {gang.names[0]} is running" if gang.size == 1 else f"all {gang.size} pods are running"
        return step.move(State.RUNNING, "Started", running)
    timeout = spec.preparing_timeout_seconds
    # Counted from when it entered preparing (unknown only in a status written by hand with no history: no timeout).
    since = status.history[-1].at if status.history else None
    deadline = since + datetime.timedelta(seconds=timeout) if since is not None and timeout is not None else None
    if deadline is not None and step.now >= deadline:
        pod = next(p for p in step.gang.pods if not started(p))
        why = pod.main.reason or pod.unscheduled or pod.phase
        what = "the pod" if gang.size == 1 else f"pod {pod.name}"
        return step.move(State.FAILED, "PreparingTimeout", f"{what} did not start within {timeout}s ({why})")
    return _later(_why_waiting(step), deadline)


def _why_waiting(step: _Step) -> Decision:
    """Say what a person can act on while a pod has not started: why its main container waits (an image that
    cannot be pulled, a missing Secret), else why it is not scheduled. Routine steps are not written."""
    size, waiting = step.gang.size, [p for p in step.gang.pods if not started(p)]
    for pod in waiting:
        if pod.main.reason and pod.main.reason not in ROUTINE:
            reason, message = status_reason(pod.main.reason, pod.main.message or pod.main.reason, fallback="Waiting")
            return step.note(reason, about(size, pod.name, message))
    for pod in waiting:
        if pod.unscheduled:
            reason, message = status_reason(pod.unscheduled, pod.unscheduled_message or pod.unscheduled,
                                            fallback="Unschedulable")
            return step.note(reason, about(size, pod.name, message))
    return NOTHING


def _lost_or_failed(step: _Step) -> Decision | None:
    """While the gang should be running: a lost worker re-queues it, a failed one ends the workload."""
    if (loss := step.gang.loss) is not None:
        return _lost(step, loss.reason, loss.message)
    if (failure := step.gang.failure) is not None:
        assert failure.pod is not None
        return step.move(State.FAILED, failure.reason, failure.message, run=run_info(failure.pod))
    return None


def _running(step: _Step) -> Decision:
    if (ended := _lost_or_failed(step)) is not None:
        return ended
    gang, leader = step.gang, step.gang.leader
    assert leader is not None
    if gang.size == 1 and succeeded(leader):
        return step.move(State.COLLECTING, "Succeeded", "the main container exited 0; collecting its result")
    if step.spec.success_policy is SuccessPolicy.ALL and gang.succeeded == gang.size:
        return step.move(State.COLLECTING, "Succeeded",
                         f"all {gang.size} pods exited 0; collecting the result of pod {leader.name}")
    if step.spec.success_policy is SuccessPolicy.LEADER and succeeded(leader):
        return step.move(State.COLLECTING, "Succeeded",
                         f"pod {leader.name} (index 0) exited 0; stopping the others, collecting its result")
    if step.view.is_service and leader.ready:
        return step.move(State.SERVING, "Ready", f"serving at {step.status.endpoint}")
    return NOTHING


def _lost(step: _Step, reason: str, message: str) -> Decision:
    """A worker lost to the infrastructure is not the user's failure: re-queue while attempts remain. The whole
    gang goes: the next attempt starts all of it again. An attempt Kueue stopped (preemption, eviction) was its
    decision, not a failure: it spends none of the user's attempts."""
    status, spec = step.status, step.spec
    if reason == EVICTED_BY_KUEUE:
        return step.move(State.ORPHANED, reason, message, evictions=status.evictions + 1)
    if step.attempts_used() >= spec.max_attempts:
        return step.move(State.FAILED, "RetryLimitExceeded",
                         f"{message}; {status.attempts} of {spec.max_attempts} attempts used")
    return step.move(State.ORPHANED, reason, message)


def _collecting(step: _Step) -> Decision:
    leader = step.gang.leader
    if leader is None:
        return step.move(State.COMPLETED, "Completed", "the pod vanished before its result was collected")
    return step.move(State.COMPLETED, "Completed", "the result was collected", run=run_info(leader))


def _orphaned(step: _Step) -> Decision:
    if step.status.reason == EVICTED_BY_KUEUE:  # Kueue admits it again when it sees fit: no backoff of ours
        return step.move(State.QUEUED, REQUEUED_BY_KUEUE, f"Kueue stopped attempt {step.status.attempts}; the next "
                                                          f"waits for admission in LocalQueue {step.spec.queue_name}")
    at = step.now + step.policy.backoff(step.status.attempts)
    return step.move(State.QUEUED, "Requeued", f"the worker was lost; attempt {step.status.attempts + 1} "
                                               f"not before {at.strftime('%H:%M:%S')} UTC")


def _serving(step: _Step) -> Decision:
    if (ended := _lost_or_failed(step)) is not None:
        return ended
    leader = step.gang.leader
    assert leader is not None
    if leader.main.terminated:  # exited 0 on its own: it is stopping, not serving
        return step.move(State.STOPPING, "ServerExited", "the server exited by itself")
    ready = step.status.condition(ConditionType.READY)
    was_ready = ready is not None and ready.status == ConditionStatus.TRUE
    if bool(leader.ready) != was_ready:
        reason, message = ("Ready", "the server is ready again") if leader.ready else (
            "NotReady", "the server stopped answering its readiness probe")
        return Decision(status=step.counted(set_readiness(step.status, bool(leader.ready), reason=reason,
                                                          message=message, now=step.now,
                                                          generation=step.view.generation)))
    return NOTHING


def _stopping(step: _Step) -> Decision:
    """Every pod of the gang was asked to stop: done when all have stopped cleanly or are gone."""
    gang, leader = step.gang, step.gang.leader
    run = {"run": run_info(leader)} if leader is not None else {}
    running = [p for p in gang.members.values() if not stopped_cleanly(p)]
    if not running:
        return step.move(State.COMPLETED, "Stopped", "the server stopped", *step.delete(gang.members.values()), **run)
    for pod in running:
        if (failure := failure_of(pod)) is not None:
            return step.move(State.FAILED, failure[0], about(gang.size, pod.name, failure[1]),
                             *step.delete(gang.members.values()), run=run_info(pod))
    # Nothing will confirm that they stopped: say so. (One deleted with grace 0 already is only deleted again.)
    if overdue := [p for p in running if step.overdue(p) and not p.forced]:
        pod = overdue[0]
        assert pod.deletion_due is not None
        grace = f"{pod.deletion_due:%H:%M:%S} UTC + {step.policy.force_delete_after:g}s"
        return step.move(State.FAILED, "TerminationTimeout",
                         f"pod {pod.name} did not stop by {grace} (its node may be gone); deleted with grace 0",
                         *(DeletePod(p.name, p.uid, force=True) for p in overdue))
    # Ask every pod still running to stop (the transition here was written first: this is the state's own work).
    return _later(Decision(actions=step.delete(running)), step.next_force_due(running))


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
                    policy: Policy = Policy(), failures: int = 1, pods: Iterable[PodSummary] = ()) -> Decision:
    """A pod (or Service) could not be created; ``pods`` are the workload's pods as last seen.

    An invalid object ends the workload (``failed``, InvalidSpec, the API server's words): retrying
    cannot help. Anything else keeps the state and the attempt count, says why, and tries again after a
    backoff that grows with ``failures``, the refusals in a row. A gang is created whole or not at all: the
    pods of the new attempt made before the refusal are deleted, so that none holds a node meanwhile.
    """
    step = _Step(view, view.gang(pods), now, policy, None)
    coming = set(attempt_pod_names(view.name, view.status.attempts + 1, view.replicas)) if view.replicas > 1 else set()
    made = step.delete(p for p in step.gang.others if p.name in coming)
    if refusal is CreationRefusal.INVALID:
        return step.move(State.FAILED, refusal.value, message, *made)
    return Decision(actions=made, status=step.note(refusal.value, message).status, recheck_at=now + policy.backoff(failures))


RECONCILE_FAILED = "ReconcileFailed"


def reconcile_failed(view: WorkloadView, message: str, now: datetime.datetime,
                     pods: Iterable[PodSummary] = ()) -> Decision:
    """The operator could not take the workload's next step (a write the API server refused, or a bug in the
    operator): say so while it is active; a finished workload keeps the reason it finished with."""
    if view.status.state is None or view.status.state in TERMINAL:
        return NOTHING
    return _Step(view, view.gang(pods), now, Policy(), None).note(RECONCILE_FAILED, message)
