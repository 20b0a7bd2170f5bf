"""The kopf shell: unpack events, build the core's view, apply its decisions through ``kube``.

Run it with ``workload-operator run`` or ``kopf run -m workload_operator.handlers``.

Only ``on.event`` handlers are used: kopf then keeps no per-object bookkeeping
(no progress or diff-base annotations, no finalizer of its own), so the status
holds only what the schema allows and every API write is one the operator chose.
Every event, including the initial listing at start-up, reconciles the workload
against its pod (level-triggered), so a transition missed while the operator was
down is applied on the next start.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import kopf

from workload_operator import GROUP, PLURAL, VERSION, kopf_transform, metrics
from workload_operator.held import held, is_reduced, waits_on_nothing
from workload_operator.kopf_backlog import queue_events_in_backlogs
from workload_operator.kopf_bodies import free_event_bodies_by_refcount
from workload_operator.kopf_dispatch import build_handler_kwargs_once
from workload_operator.kopf_json import parse_kopfs_json_with_orjson
from workload_operator.kopf_startup import wake_index_waiters_once
from workload_operator.kopf_transform import drop_managed_fields_on_arrival
from workload_operator.kube import Conflict, CreationFailed, Gone, Kube, Refused, Transient

from workload_operator.lifecycle.decide import (
    AddFinalizer, CreatePod, CreateService, CreationRefusal, Decision, DeletePod, DeleteRetiredPods, DeleteService,
    DeleteWorkload, Policy, RECONCILE_FAILED, RemoveFinalizer, RetirePod, WorkloadView, creation_failed, decide,
    headless_service_name, reconcile_failed, service_name,
)
from workload_operator.lifecycle.pods import PodSummary, controller_uid, summarize_pod
from workload_operator.lifecycle.queue import admission, standings
from workload_operator.lifecycle.states import TERMINAL, State
from workload_operator.lifecycle.status import ACTIVE_STATES
from workload_operator.manifests import (
    MANAGED_BY, MANAGED_BY_LABEL, WATCHED_PODS, headless_service_manifest, pod_manifest, service_manifest,
)

wake_index_waiters_once()  # a restart with N objects listed costs N wake-ups, not N² (see kopf_startup.py)
build_handler_kwargs_once()  # a watch event's handler arguments built once, not four times (see kopf_dispatch.py)
drop_managed_fields_on_arrival()  # bodies held without what nobody here reads (see kopf_transform.py)
parse_kopfs_json_with_orjson()  # watch events and answers parsed about twice as fast (see kopf_json.py)
queue_events_in_backlogs()  # each object's events queued in a list, not in 4 kB of asyncio.Queue (see kopf_backlog.py)
free_event_bodies_by_refcount()  # an event's body freed once handled, not at the collector's next pass (see kopf_bodies.py)

# A full lifecycle is at most ~8 steps; a reconcile that takes more is looping on a bug.
MAX_STEPS = 20
GC_THRESHOLD = 10_000  # allocations between young-generation collections (CPython's default: 700)
# Waits before retrying after a transient API failure (kopf does not retry event handlers): capped backoff.
RETRY_DELAYS = (0.5, 1, 2, 4, 8, 16, 30)
OUR_PODS = {MANAGED_BY_LABEL: MANAGED_BY}
# Objects per page of kopf's listings. kopf lists in one response unless told a page size; then the whole
# listing's text and every object with its managedFields are in memory at once at start-up, and what the
# process takes then it keeps (docs/performance.md, "What a restart holds").
LISTING_PAGE = 100
audit = logging.getLogger("workload_operator.audit")
logger = logging.getLogger(__name__)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is at the time of writing (runners and tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


# Reasons, said without a transition, that call for a person's attention (Events of type Warning).
WARNING_REASONS = frozenset({
    *(refusal.value for refusal in CreationRefusal), RECONCILE_FAILED, "NotReady", "Unschedulable", "ImagePullBackOff",
    "ErrImagePull", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError",
})


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# The operator's settings come from the environment (`workload-operator run` sets them from its options),
# so that `kopf run -m workload_operator.handlers` and the tests configure it the same way.
METRICS_PORT_ENV = "WORKLOAD_OPERATOR_METRICS_PORT"
POLICY_ENV = {
    "backoff_base": "WORKLOAD_OPERATOR_BACKOFF_SECONDS",
    "backoff_cap": "WORKLOAD_OPERATOR_BACKOFF_CAP_SECONDS",
    "max_active": "WORKLOAD_OPERATOR_MAX_ACTIVE",
    "max_active_per_namespace": "WORKLOAD_OPERATOR_MAX_ACTIVE_PER_NAMESPACE",
    "force_delete_after": "WORKLOAD_OPERATOR_FORCE_DELETE_AFTER_SECONDS",
}


def policy_from_environment() -> Policy:
    values: dict[str, Any] = {}
    for field, variable in POLICY_ENV.items():
        if raw := os.environ.get(variable):
            values[field] = int(raw) if field.startswith("max_active") else float(raw)  # counts, else seconds
    return Policy(**values)


@dataclasses.dataclass
class Runtime:
    """What the handlers share (kept in kopf's memo)."""

    kube: Kube
    policy: Policy = Policy()
    clock: Callable[[], datetime.datetime] = utc_now
    # One reconcile at a time per workload: pod events and workload events arrive on different kopf workers.
    locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock))
    # Our own latest writes (kept until the Workload's DELETED event, or until the index holds our write of a
    # finished state): a decision never starts from a view older than them, and a released Workload is not
    # reconciled again from a stale index entry.
    written: dict[str, WorkloadView] = dataclasses.field(default_factory=dict)
    # Pods the operator created that the pod index has not shown yet: by the uid of their Workload, then by
    # (namespace, name). A Workload's own are looked up at each of its reconciles, among thousands in a burst.
    created_pods: dict[str, dict[tuple[str, str], PodSummary]] = dataclasses.field(default_factory=dict)
    # The Workload each of those was created for, by (namespace, name): a pod's event finds its note through it,
    # whatever its owner references say by then.
    created_for: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    # The resourceVersion each of those was created at, by the pod's uid, until the watch brings the pod: its
    # ADDED event at that version is the echo of the creation, which created_pods holds already.
    created_versions: dict[str, str] = dataclasses.field(default_factory=dict)
    # Pods (by uid) the operator retired that the watch has not shown gone yet (then the index forgets them).
    retired_pods: set[str] = dataclasses.field(default_factory=set)
    # Creations refused in a row, per workload: the wait before the next try grows with it; and that next try.
    refusals: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    create_not_before: dict[str, datetime.datetime] = dataclasses.field(default_factory=dict)
    # Reconciles failed in a row, per workload (a write refused, a bug): the same, for retrying them.
    failures: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    unreadable: set[str] = dataclasses.field(default_factory=set)  # workloads already reported as unreadable
    # Admission decisions are taken one at a time, so two workloads never take the same free slot.
    admission_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    # One pending wake-up per workload, for the time its decision asked to be checked again.
    timers: dict[str, asyncio.TimerHandle] = dataclasses.field(default_factory=dict)
    # Finished Workloads that wait on nothing (held.waits_on_nothing) and that kopf was never given: listed at
    # start-up, mostly. Held here, reduced, and left out of kopf's stream, which would make each its worker, its
    # record and its index entry (most of a restart's CPU). A change that makes one wait (its deletion, a TTL)
    # goes to kopf, and so does every later event of it.
    settled: dict[str, WorkloadView] = dataclasses.field(default_factory=dict)
    # The Workloads (uids) kopf's stream has given kopf an event of, since their last DELETED event: kopf's, for
    # good. Its index would not tell, as it lags behind the stream (and has no handler to be read from at start-up).
    given: set[str] = dataclasses.field(default_factory=set)
    # kopf's indexes, kept so that timers and queue wake-ups can reconcile outside of a handler.
    workloads: Any = None
    pods: Any = None
    # Reconciles started by timers and wake-ups: asyncio keeps only weak references to tasks.
    background: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)

    def forget(self, uid: str) -> None:
        self.settled.pop(uid, None)
        for key, pod in (self.created_pods.pop(uid, None) or {}).items():  # never shown by the watch
            if self.created_for.get(key) == uid:  # not a pod of the same name made since for another Workload
                del self.created_for[key]
            self.created_versions.pop(pod.uid, None)
        self.locks.pop(uid, None)
        self.unreadable.discard(uid)
        self.written.pop(uid, None)
        self.refusals.pop(uid, None)
        self.create_not_before.pop(uid, None)
        self.failures.pop(uid, None)
        if (timer := self.timers.pop(uid, None)) is not None:
            timer.cancel()

    def leaves_out(self, resource: Any, event: Any) -> bool:
        """Whether kopf need not see a watch event or listed object (``kopf_transform.skip_on_arrival``): the
        echo of the operator's own write (``known_already``) or pod creation (``created_already``), or a finished
        Workload held here (``holds_settled``)."""
        if _is_pods(resource):
            return self.created_already(event)
        return self.known_already(resource, event) or self.holds_settled(resource, event)

    def created_already(self, event: Any) -> bool:
        """Whether a pod's watch event is the echo of the operator's creation of it: its ADDED event, at the version
        the creation answered with. ``created_pods`` holds the pod until its next event, which kopf sees. The first
        event of each pod the operator created, whatever it is, ends the wait for that echo."""
        body = event.get("object") if isinstance(event, dict) else None
        meta = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or not self.created_versions:
            return False
        created = self.created_versions.pop(meta.get("uid") or "", None)
        return created is not None and event.get("type") == "ADDED" and meta.get("resourceVersion") == created

    def holds_settled(self, resource: Any, event: Any) -> bool:
        """Whether this event brings a Workload that kopf was never given and that waits on nothing: it is then
        held here (``settled``) in its place. Any other event of a Workload held here takes it out and goes to
        kopf, which keeps it from then on, whatever comes, until its DELETED event."""
        if not isinstance(event, dict) or not _is_workloads(resource):
            return False
        body = event.get("object")
        meta = body.get("metadata") if isinstance(body, dict) else None
        uid = meta.get("uid") if isinstance(meta, dict) else None
        if not uid or not isinstance(uid, str):
            return False
        if event.get("type") == "DELETED":
            self.given.discard(uid)
            self.settled.pop(uid, None)
            return False
        status = body.get("status")  # looked at before it is parsed: most events are of Workloads in flight
        state = status.get("state") if isinstance(status, dict) else None
        if uid not in self.given and isinstance(state, str) and state in TERMINAL:
            view = held(WorkloadView.from_body(body))
            if waits_on_nothing(view):
                self.settled[uid] = view
                return True
        self.settled.pop(uid, None)
        self.given.add(uid)
        return False

    def known_already(self, resource: Any, event: Any) -> bool:
        """Whether a watch event brings nothing the operator does not hold: a change of a Workload no newer than the
        operator's own last write of it, whose answer ``written`` holds (the server's whole object at that version,
        so with every change before it). The echo of a finished state still goes through (the index then holds it,
        reduced, and ``written`` lets go), and so does every event of a queued Workload under admission limits (it
        decides its place again on them). Without integer resourceVersions (etcd's), nothing is left out."""
        if not isinstance(event, dict) or event.get("type") != "MODIFIED" or not _is_workloads(resource):
            return False
        meta = (event.get("object") or {}).get("metadata") or {}
        ours = self.written.get(meta.get("uid", ""))
        if ours is None or (ours.status.state is State.QUEUED and self.policy.limits_admission):
            return False
        try:
            version = int(meta.get("resourceVersion", ""))
        except (TypeError, ValueError):
            return False
        written = _rv(ours)
        return 0 <= version < written or (version == written and ours.status.state not in TERMINAL)

    def views(self) -> list[WorkloadView]:
        """Every Workload as last known: the index, or our own newer write; and those settled."""
        indexed = self.workloads.items() if self.workloads is not None else ()
        return [*(freshest(v, self.written.get(uid)) for uid, store in indexed for v in list(store)[:1]),
                *self.settled.values()]

    def wake_at(self, uid: str, at: datetime.datetime, *, unless_sooner: bool = False) -> None:
        """Reconcile at ``at``, replacing the pending wake-up (or keeping it if it is sooner and ``unless_sooner``)."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, (at - self.clock()).total_seconds())
        if (timer := self.timers.get(uid)) is not None:
            if unless_sooner and timer.when() <= loop.time() + delay:
                return
            timer.cancel()
        self.timers[uid] = loop.call_later(delay, self.wake, uid)

    def wake(self, uid: str) -> None:
        """Reconcile a workload outside of any handler (its timer fired, or a queue slot freed up)."""
        self.timers.pop(uid, None)
        task = asyncio.get_running_loop().create_task(reconcile(uid, self, self.workloads, self.pods))
        self.background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("a reconcile woken by a timer or the queue failed: %s", exc, exc_info=exc)

    def wake_waiting(self, moved: str) -> None:
        """Reconcile every other queued workload: ``moved`` joined or left the queue, so their places changed."""
        for view in self.views():
            if view.uid != moved and view.status.state is State.QUEUED:
                self.wake(view.uid)

    def wake_queue(self) -> None:
        """A slot freed up: reconcile the queued workloads that may now start."""
        if self.policy.limits_admission:
            for uid, stand in standings(self.views(), self.policy).items():
                if stand.admitted:
                    self.wake(uid)


def _is_workloads(resource: Any) -> bool:
    return getattr(resource, "group", None) == GROUP and getattr(resource, "plural", None) == PLURAL


def _is_pods(resource: Any) -> bool:
    return getattr(resource, "group", None) == "" and getattr(resource, "plural", None) == "pods"


def _rv(view: WorkloadView) -> int:
    # resourceVersions are opaque by contract; where they are integers (etcd) their order lets us skip
    # a write that the API server would refuse anyway. Correctness never depends on it: writes are conditional.
    try:
        return int(view.resource_version)
    except ValueError:
        return -1


def freshest(*views: WorkloadView | None) -> WorkloadView:
    return max((v for v in views if v is not None), key=_rv)


@kopf.on.login()
def on_login(**_: Any) -> kopf.ConnectionInfo:
    return Kube.from_environment().connection_info()


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base: kopf's diff of an event against the last handled one serves only its on.create/update/field
    handlers, which the operator has none of; yet kopf would deep-copy every event's body to build it."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: kopf.Body) -> Any:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        pass


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for the operator (benchmarks/kopf_floor.py runs kopf alone with the same)."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)  # on.event: never written
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False                                # Events: one per transition, by kube.post_event
    settings.watching.label_selectors["v1", "pods"] = WATCHED_PODS  # our pods not retired, filtered by the API server
    settings.watching.chunk_size = LISTING_PAGE                     # listings in pages (limit & continue)


@kopf.on.startup()
async def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure_kopf(settings)
    # Every watch event allocates thousands of short-lived objects (JSON, pydantic models); with CPython's
    # default threshold (700) the collector runs so often that it costs a quarter of the CPU under load
    # (`python -m benchmarks.lifecycle`, 1,000 workloads: 26 s → 19.5 s of CPU, +11% peak RSS).
    gc.set_threshold(GC_THRESHOLD, 10, 10)
    if not audit.handlers:  # the audit trail: one JSON document per line
        stream = _StderrHandler()
        stream.setFormatter(logging.Formatter("%(message)s"))
        audit.addHandler(stream)
        audit.propagate = False
        audit.setLevel(logging.INFO)
    memo.runtime = runtime = Runtime(kube=Kube.from_environment(), policy=policy_from_environment())
    # The echoes of its own writes and the finished Workloads that wait on nothing, left out of kopf's stream.
    kopf_transform.skip_on_arrival = runtime.leaves_out
    metrics.WORKLOADS.statuses = lambda: [view.status for view in runtime.views()]
    if port := os.environ.get(METRICS_PORT_ENV):
        try:
            metrics.serve(int(port))
        except OSError as exc:
            raise kopf.PermanentError(f"cannot serve metrics on port {port}: {exc}") from None


@kopf.on.cleanup()
async def on_cleanup(memo: kopf.Memo, **_: Any) -> None:
    if (runtime := getattr(memo, "runtime", None)) is not None:
        if kopf_transform.skip_on_arrival == runtime.leaves_out:
            kopf_transform.skip_on_arrival = None
        await runtime.kube.close()


def own_echo(body: kopf.Body, uid: str, memo: kopf.Memo) -> WorkloadView | None:
    """The view made from the answer to our own last write, when ``body`` is the watch's echo of that write (the
    same resourceVersion): it is that same object, already parsed, and already decided from."""
    runtime: Runtime | None = getattr(memo, "runtime", None)
    ours = runtime.written.get(uid) if runtime is not None else None
    version = (body.get("metadata") or {}).get("resourceVersion")
    return ours if ours is not None and version and ours.resource_version == version else None


# The index functions are coroutines: kopf would run plain functions in a worker thread, a hop per watch event
# (side by side, 500 batch workloads at once: 18.3 -> 15.0 ms of CPU per lifecycle).
@kopf.index(GROUP, VERSION, PLURAL)
async def workloads_by_uid(body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> dict[str, WorkloadView]:
    # One parse per write; a finished Workload's view reduced to what its later decisions read (see held.py).
    view = held(own_echo(body, uid, memo) or WorkloadView.from_body(body))
    if is_reduced(view):
        # Nothing reads a finished Workload's spec or status after this (its event handler reads its metadata), yet
        # kopf holds the event's body until the handler has run: at start-up, every listed Workload's until every
        # index is filled. So the parsed body lets go of them here (docs/performance.md, "What a restart holds").
        source = body._src  # the event's parsed object, which kopf's Body reads through
        source.pop("spec", None)
        source.pop("status", None)
    return {uid: view}


@kopf.index("v1", "pods", labels=OUR_PODS)
async def pods_by_workload(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], PodSummary] | None:
    """Pods by (namespace, uid of the Workload that controls them). The labels only narrow the watch: a pod
    stands for a workload's own only through its controller owner reference, in the workload's namespace."""
    summary = summarize_pod(body)
    return {(namespace, summary.owner): summary} if summary.owner else None


def own_pods(view: WorkloadView, runtime: Runtime, pods: kopf.Index) -> list[PodSummary]:
    """The workload's pods: indexed, or created by the operator and not indexed yet."""
    watched = [p for p in pods.get((view.namespace, view.uid), []) if p.uid not in runtime.retired_pods]
    shown = {p.name for p in watched}
    created = (p for (namespace, name), p in runtime.created_pods.get(view.uid, {}).items()
               if namespace == view.namespace and name not in shown and p.uid not in runtime.retired_pods)
    return [*watched, *created]


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_workload_event(type: str, body: kopf.Body, uid: str, memo: kopf.Memo, workloads_by_uid: kopf.Index,
                            pods_by_workload: kopf.Index, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.workloads, runtime.pods = workloads_by_uid, pods_by_workload
    if type == "DELETED":
        runtime.forget(uid)
        return
    # The echo of our own write: the reconcile that wrote it went on from it until nothing was left. Not so for
    # a workload waiting for admission: its place depends on the others' (who came since), so it decides again.
    echo = own_echo(body, uid, memo)
    if echo is not None and echo.status.state in TERMINAL:
        # Our write of a finished state is in the index now: nothing of ours is newer than the index, and a finished
        # Workload is held there alone, reduced (until a TTL or a deletion makes the operator write again).
        runtime.written.pop(uid, None)
    if echo is not None and not (echo.status.state is State.QUEUED and runtime.policy.limits_admission):
        return
    await reconcile(uid, runtime, workloads_by_uid, pods_by_workload)


@kopf.on.event("v1", "pods", labels=OUR_PODS)
async def on_pod_event(type: str, body: kopf.Body, uid: str, name: str, namespace: str, memo: kopf.Memo,
                       workloads_by_uid: kopf.Index, pods_by_workload: kopf.Index, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.workloads, runtime.pods = workloads_by_uid, pods_by_workload
    runtime.created_versions.pop(uid, None)  # kopf's stream may not ask the operator (kopf_transform)
    if (created_for := runtime.created_for.pop((namespace, name), None)) is not None:
        created = runtime.created_pods.get(created_for, {})
        created.pop((namespace, name), None)  # the pod index has caught up with this pod
        if not created:
            runtime.created_pods.pop(created_for, None)
    owner_uid = controller_uid(body)
    if uid in runtime.retired_pods:  # retired by the operator: nothing changes for its Workload
        if type == "DELETED":  # out of the watch, and of the index
            runtime.retired_pods.discard(uid)
        return
    owner = None
    if owner_uid:
        owner = next(iter(workloads_by_uid.get(owner_uid, [])), None) or runtime.settled.get(owner_uid)
    if owner is not None and owner.namespace == namespace:
        await reconcile(owner_uid, runtime, workloads_by_uid, pods_by_workload)


async def reconcile(uid: str, runtime: Runtime, workloads: kopf.Index, pods: kopf.Index) -> None:
    """Decide and apply steps until the core has nothing left to do for this workload.

    A transient API failure is retried after a capped backoff, from a fresh read; the backoff starts
    over once a retry has made progress. When the retries run out, a timer tries again later: the
    work never waits for an event that may not come.
    """
    if uid not in workloads and uid not in runtime.settled:  # deleted meanwhile (a wake-up can outlive its workload)
        return
    async with runtime.locks[uid]:
        indexed, settled = next(iter(workloads.get(uid, [])), None), runtime.settled.get(uid)
        if indexed is None and settled is None:
            return
        view = freshest(indexed, settled, runtime.written.get(uid))
        if view.status_error:  # written by hand, never by the operator; without a schema nothing refused it
            if uid not in runtime.unreadable:
                runtime.unreadable.add(uid)
                logger.error("%s/%s: left alone: its status is unreadable: %s", view.namespace, view.name, view.status_error)
            return
        delays = iter(RETRY_DELAYS)
        while True:
            started_from = view.status
            try:
                await _settle(view, uid, runtime, pods)
                runtime.failures.pop(uid, None)
                return
            except Gone:  # this incarnation is gone (deleted, or replaced by a new Workload of its name)
                runtime.forget(uid)
                return
            except Settled:
                return
            except Transient as exc:
                if (delay := next(delays, None)) is None:
                    later = RETRY_DELAYS[-1]
                    logger.warning("%s/%s: the API failed again (%s); trying again in %ss",
                                   view.namespace, view.name, exc, later)
                    runtime.wake_at(uid, runtime.clock() + datetime.timedelta(seconds=later), unless_sooner=True)
                    return
                logger.warning("%s/%s: the API failed (%s); retrying in %ss", view.namespace, view.name, exc, delay)
                await asyncio.sleep(delay)
                try:
                    fresh = await runtime.kube.get_workload(view)
                except Transient:
                    continue
                if fresh is None:
                    return
                view = WorkloadView.from_body(fresh)
                if view.status != started_from:  # only the operator writes status: its steps got through
                    delays = iter(RETRY_DELAYS)
            except (Refused, kopf.PermanentError) as exc:  # a write refused, or a bug: say so, try again later
                await report_failure(view, exc, runtime)
                return
            except Exception as exc:  # never logged-and-forgotten: recorded, and retried
                logger.exception("%s/%s: the operator failed", view.namespace, view.name)
                await report_failure(view, exc, runtime)
                return


async def report_failure(view: WorkloadView, exc: BaseException, runtime: Runtime) -> None:
    """A step failed for a reason that waiting a moment will not cure (a write the API server refuses, a bug):
    say so on the workload (its reason, unless it has finished, and a Warning Event) and in the log, and try
    again after a backoff that grows with each failure in a row."""
    uid, now = view.uid, runtime.clock()
    runtime.failures[uid] += 1
    retry_at = now + runtime.policy.backoff(runtime.failures[uid])
    message = f"{type(exc).__name__}: {exc}"
    logger.error("%s/%s: %s; trying again at %s", view.namespace, view.name, message, retry_at.strftime("%H:%M:%S"))
    runtime.wake_at(uid, retry_at)
    try:
        fresh = await runtime.kube.get_workload(view)
        if fresh is None:
            return
        view = WorkloadView.from_body(fresh)
        noted = reconcile_failed(view, message, now, own_pods(view, runtime, runtime.pods))
        if noted.status is not None:
            runtime.written[uid] = WorkloadView.from_body(await runtime.kube.write_status(view, noted.status))
        await runtime.kube.post_event(view, reason=RECONCILE_FAILED, message=message, warning=True, now=now)
    except Exception as again:  # the timer above still tries again
        logger.warning("%s/%s: could not record that on the workload either: %s", view.namespace, view.name, again)


async def _settle(view: WorkloadView, uid: str, runtime: Runtime, pods: kopf.Index) -> None:
    for _ in range(MAX_STEPS):
        known = own_pods(view, runtime, pods)
        if view.status.state is State.QUEUED and runtime.policy.limits_admission:
            async with runtime.admission_lock:  # decide and start under one lock: one free slot, one taker
                stand = admission(view, runtime.views(), runtime.policy)
                decision = decide(view, known, runtime.clock(), policy=runtime.policy, admission=stand,
                                  create_not_before=runtime.create_not_before.get(uid))
                view = await _step(view, decision, runtime)
        else:
            decision = decide(view, known, runtime.clock(), policy=runtime.policy,
                              create_not_before=runtime.create_not_before.get(uid))
            view = await _step(view, decision, runtime)
        if decision.recheck_at is not None:
            runtime.wake_at(uid, decision.recheck_at)
        if not decision:
            return
        if decision.status is None and all(isinstance(action, DeletePod | RetirePod) for action in decision.actions):
            return  # waiting for pods to go: their watch events bring the workload back (deciding now would delete again)
    raise kopf.PermanentError(f"no steady state after {MAX_STEPS} steps: please report this as a bug")


async def _step(view: WorkloadView, decision: Decision, runtime: Runtime) -> WorkloadView:
    """Apply one decision and return the view to decide from next (re-read after a refused write)."""
    if not decision:
        return view
    before, decided_at, retry_at = view.status.state, time.monotonic(), None
    try:
        try:
            view = await apply(view, decision, runtime)
            if decision.status is not None:
                metrics.DECISION_TO_WRITE.observe(time.monotonic() - decided_at)
        except CreationFailed as exc:  # the API server would not create the pod or Service: the core says what now
            runtime.refusals[view.uid] += 1
            made = own_pods(view, runtime, runtime.pods)  # with those this decision created before the refusal
            refused = creation_failed(view, exc.refusal, str(exc), runtime.clock(), runtime.policy,
                                      failures=runtime.refusals[view.uid], pods=made)
            retry_at = refused.recheck_at  # kept even if the note below meets a conflict
            if retry_at is not None:  # no creation before then, whatever event comes meanwhile
                runtime.create_not_before[view.uid] = retry_at
            view = await apply(view, refused, runtime)
    except Conflict:
        metrics.CONFLICTS.inc()
        fresh = await runtime.kube.get_workload(view)
        if fresh is None:
            raise Gone(view.name) from None
        view = WorkloadView.from_body(fresh)
    runtime.written[view.uid] = view
    if before in ACTIVE_STATES and view.status.state not in ACTIVE_STATES:
        runtime.wake_queue()  # after `written`: the queue must see this slot free
    if runtime.policy.limits_admission and (before is State.QUEUED) != (view.status.state is State.QUEUED):
        runtime.wake_waiting(view.uid)  # it joined or left the queue: the others' places (and messages) moved
    if retry_at is not None:  # not now: deciding again at once would only be refused again
        runtime.wake_at(view.uid, retry_at)
        raise Settled
    return view


class Settled(Exception):
    """Nothing more to do now; a timer will bring the workload back."""


async def apply(view: WorkloadView, decision: Decision, runtime: Runtime) -> WorkloadView:
    """Run one decision: its actions, then the conditional status write that commits them."""
    kube = runtime.kube
    pods = [action for action in decision.actions if isinstance(action, CreatePod)]
    for action in decision.actions:
        match action:
            case AddFinalizer():
                view = WorkloadView.from_body(await kube.add_finalizer(view))
            case RemoveFinalizer():
                view = WorkloadView.from_body(await kube.remove_finalizer(view))
            case CreatePod():  # a gang's pods all at once, at the first of them
                if pods:
                    await create_pods(view, pods, runtime)
                    pods = []
            case DeletePod(name=name, uid=pod_uid, force=force):
                await kube.delete_pod(view.namespace, name, pod_uid, force=force)
            case RetirePod(name=name, uid=pod_uid):  # one by one: nothing waits for it, the status is written
                if await kube.retire_pod(view.namespace, name, pod_uid):
                    runtime.retired_pods.add(pod_uid)
            case DeleteRetiredPods(names=names):
                await kube.delete_retired_pods(view.namespace, names, view.uid)
            case CreateService(headless=headless):
                assert view.spec is not None
                manifest = headless_service_manifest(view) if headless else service_manifest(view, view.spec)
                await kube.create_service(manifest, view.uid)
            case DeleteService(headless=headless):
                name = headless_service_name(view) if headless else service_name(view)
                await kube.delete_service(view.namespace, name, view.uid)
            case DeleteWorkload():
                # Decide the next step from the marked object (release), not from the view before the delete.
                body = await kube.delete_workload(view)
                if body is None or body.get("kind") == "Status":  # already gone
                    raise Gone(view.name)
                view = WorkloadView.from_body(body)
    if decision.status is not None:
        new_view = WorkloadView.from_body(await kube.write_status(view, decision.status))
        if new_view.status.state != view.status.state:
            await record_transition(view, new_view, runtime)
        elif (new_view.status.reason, new_view.status.message) != (view.status.reason, view.status.message):
            await runtime.kube.post_event(new_view, reason=new_view.status.reason or "Changed",
                                          message=new_view.status.message or "", now=runtime.clock(),
                                          warning=new_view.status.reason in WARNING_REASONS)
        view = new_view
    return view


async def create_pods(view: WorkloadView, pods: list[CreatePod], runtime: Runtime) -> None:
    """Create pods concurrently: a gang of N costs about one round trip, not N. Each one made is noted (the index
    has not seen it yet) even when another is refused; the first refusal is then raised."""
    assert view.spec is not None
    spec = view.spec
    results = await asyncio.gather(
        *(runtime.kube.create_pod(pod_manifest(view, spec, p.attempt, p.index), view.uid) for p in pods),
        return_exceptions=True)
    for result in results:
        if not isinstance(result, BaseException):
            summary = summarize_pod(result)
            runtime.created_pods.setdefault(view.uid, {})[view.namespace, summary.name] = summary
            runtime.created_for[view.namespace, summary.name] = view.uid
            if version := (result.get("metadata") or {}).get("resourceVersion"):
                runtime.created_versions[summary.uid] = version
    if errors := [result for result in results if isinstance(result, BaseException)]:
        raise errors[0]
    runtime.refusals.pop(view.uid, None)
    runtime.create_not_before.pop(view.uid, None)


async def record_transition(old: WorkloadView, new: WorkloadView, runtime: Runtime) -> None:
    """The audit trail of a transition: a Kubernetes Event and one JSON log line."""
    status = new.status
    entry = status.history[-1]
    metrics.TRANSITIONS.labels(str(old.status.state) if old.status.state else "", str(status.state)).inc()
    source = str(old.status.state) if old.status.state else "(new)"
    audit.info(json.dumps({
        "event": "transition", "workload": new.name, "namespace": new.namespace, "uid": new.uid,
        "from": str(old.status.state) if old.status.state else None, "to": str(status.state),
        "reason": status.reason, "message": status.message, "attempt": status.attempts,
        "at": entry.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }))
    await runtime.kube.post_event(
        new, reason=status.reason or "Transition", message=f"{source} → {status.state}: {status.message or status.reason}",
        warning=status.state is State.FAILED, now=entry.at,
    )
