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
import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any

import kopf

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.kube import Conflict, Gone, Kube, Transient
from workload_operator.lifecycle.decide import (
    AddFinalizer, CreatePod, Decision, DeletePod, RemoveFinalizer, WorkloadView, decide,
)
from workload_operator.lifecycle.pods import PodSummary, summarize_pod
from workload_operator.lifecycle.states import State
from workload_operator.manifests import MANAGED_BY, MANAGED_BY_LABEL, POD_SELECTOR, WORKLOAD_UID_LABEL, pod_manifest

# A full lifecycle is at most ~8 steps; a reconcile that takes more is looping on a bug.
MAX_STEPS = 20
# Waits before retrying after a transient API failure (kopf does not retry event handlers): capped backoff.
RETRY_DELAYS = (0.5, 1, 2, 4, 8, 16, 30)
OUR_PODS = {MANAGED_BY_LABEL: MANAGED_BY}
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


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass
class Runtime:
    """What the handlers share (kept in kopf's memo)."""

    kube: Kube
    clock: Callable[[], datetime.datetime] = utc_now
    # One reconcile at a time per workload: pod events and workload events arrive on different kopf workers.
    locks: collections.defaultdict[str, asyncio.Lock] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(asyncio.Lock))
    # Our own latest writes (kept until the Workload's DELETED event): a decision never starts from a view
    # older than them, and a released Workload is not reconciled again from a stale index entry.
    written: dict[str, WorkloadView] = dataclasses.field(default_factory=dict)
    created_pods: dict[str, PodSummary] = dataclasses.field(default_factory=dict)

    def forget(self, uid: str) -> None:
        self.locks.pop(uid, None)
        self.written.pop(uid, None)


def _rv(view: WorkloadView) -> int:
    # resourceVersions are opaque by contract; where they are integers (etcd) their order lets us skip
    # a write that the API server would refuse anyway. Correctness never depends on it: writes are conditional.
    try:
        return int(view.resource_version)
    except ValueError:
        return -1


def freshest(*views: WorkloadView | None) -> WorkloadView:
    return max((v for v in views if v is not None), key=_rv)


def current_pod(view: WorkloadView, pods: Iterable[PodSummary], created: dict[str, PodSummary]) -> PodSummary | None:
    """The pod of the workload's current attempt, as last seen (None if it does not exist)."""
    if view.status.run is None:
        return None
    wanted = view.status.run.pod
    return next((p for p in pods if p.name == wanted), None) or created.get(wanted)


@kopf.on.login()
def on_login(**_: Any) -> kopf.ConnectionInfo:
    return Kube.from_environment().connection_info()


@kopf.on.startup()
async def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.enabled = False                                # Events: one per transition, by kube.post_event
    settings.watching.label_selectors["v1", "pods"] = POD_SELECTOR  # only our pods, filtered by the API server
    if not audit.handlers:  # the audit trail: one JSON document per line
        stream = _StderrHandler()
        stream.setFormatter(logging.Formatter("%(message)s"))
        audit.addHandler(stream)
        audit.propagate = False
        audit.setLevel(logging.INFO)
    memo.runtime = Runtime(kube=Kube.from_environment())


@kopf.index(GROUP, VERSION, PLURAL)
def workloads_by_uid(body: kopf.Body, uid: str, **_: Any) -> dict[str, WorkloadView]:
    return {uid: WorkloadView.from_body(body)}


@kopf.index("v1", "pods", labels=OUR_PODS)
def pods_by_workload(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, PodSummary] | None:
    uid = labels.get(WORKLOAD_UID_LABEL)
    return {uid: summarize_pod(body)} if uid else None


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_workload_event(type: str, uid: str, memo: kopf.Memo, workloads_by_uid: kopf.Index,
                            pods_by_workload: kopf.Index, **_: Any) -> None:
    if type == "DELETED":
        memo.runtime.forget(uid)
        return
    await reconcile(uid, memo.runtime, workloads_by_uid, pods_by_workload)


@kopf.on.event("v1", "pods", labels=OUR_PODS)
async def on_pod_event(name: str, labels: kopf.Labels, memo: kopf.Memo, workloads_by_uid: kopf.Index,
                       pods_by_workload: kopf.Index, **_: Any) -> None:
    memo.runtime.created_pods.pop(name, None)  # the pod index has caught up with this pod
    uid = labels.get(WORKLOAD_UID_LABEL)
    if uid in workloads_by_uid:
        await reconcile(uid, memo.runtime, workloads_by_uid, pods_by_workload)


async def reconcile(uid: str, runtime: Runtime, workloads: kopf.Index, pods: kopf.Index) -> None:
    """Decide and apply steps until the core has nothing left to do for this workload.

    A transient API failure is retried after a capped backoff, from a fresh read; after the
    last retry the error is raised (and logged by kopf) and the next event resumes the work.
    """
    async with runtime.locks[uid]:
        indexed = next(iter(workloads.get(uid, [])), None)
        if indexed is None:
            return
        view = freshest(indexed, runtime.written.get(uid))
        for delay in (*RETRY_DELAYS, None):
            try:
                await _settle(view, uid, runtime, pods)
                return
            except Transient as exc:
                if delay is None:
                    raise
                logger.warning("%s/%s: the API failed (%s); retrying in %ss", view.namespace, view.name, exc, delay)
                await asyncio.sleep(delay)
                try:
                    fresh = await runtime.kube.get_workload(view.namespace, view.name)
                except Transient:
                    continue
                if fresh is None:
                    return
                view = WorkloadView.from_body(fresh)


async def _settle(view: WorkloadView, uid: str, runtime: Runtime, pods: kopf.Index) -> None:
    for _ in range(MAX_STEPS):
        pod = current_pod(view, pods.get(uid, []), runtime.created_pods)
        decision = decide(view, pod, runtime.clock())
        if not decision:
            return
        try:
            view = await apply(view, decision, runtime)
        except Conflict:
            fresh = await runtime.kube.get_workload(view.namespace, view.name)
            if fresh is None:
                return
            view = WorkloadView.from_body(fresh)
        except Gone:
            return
        runtime.written[uid] = view
    raise kopf.PermanentError(f"no steady state after {MAX_STEPS} steps: please report this as a bug")


async def apply(view: WorkloadView, decision: Decision, runtime: Runtime) -> WorkloadView:
    """Run one decision: its actions, then the conditional status write that commits them."""
    kube = runtime.kube
    for action in decision.actions:
        match action:
            case AddFinalizer():
                view = WorkloadView.from_body(await kube.add_finalizer(view))
            case RemoveFinalizer():
                view = WorkloadView.from_body(await kube.remove_finalizer(view))
            case CreatePod(attempt=attempt):
                assert view.spec is not None
                created = await kube.create_pod(pod_manifest(view, view.spec, attempt))
                if created is not None:
                    summary = summarize_pod(created)
                    runtime.created_pods[summary.name] = summary
            case DeletePod(name=name):
                await kube.delete_pod(view.namespace, name)
    if decision.status is not None:
        new_view = WorkloadView.from_body(await kube.write_status(view, decision.status))
        if new_view.status.state != view.status.state:
            await record_transition(view, new_view, runtime)
        view = new_view
    return view


async def record_transition(old: WorkloadView, new: WorkloadView, runtime: Runtime) -> None:
    """The audit trail of a transition: a Kubernetes Event and one JSON log line."""
    status = new.status
    entry = status.history[-1]
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
