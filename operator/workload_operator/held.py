"""What the operator keeps of a finished Workload between its events: what its remaining decisions read.

A finished Workload (completed, failed, cancelled) stays in the operator's index for as long as it exists, and
in a long-running operator most Workloads are finished ones. What is left to decide for one (``decide``) is
the ``ttlSecondsAfterFinished`` delete and, once it is deleted, its pods and Service removed and its finalizer
released; the queue and the metrics read only its state. That takes its identity (name, namespace, uid,
resourceVersion), deletionTimestamp and finalizers, its state, attempts and completionTime, and its spec's type,
TTL and replicas (a gang has a headless Service to remove; the last attempt's pods are named by both).

So the index holds for it a view with those alone (as does the shell for the finished Workloads it holds outside
kopf, those that wait on nothing: ``waits_on_nothing``): a status without its history, conditions, message or
run (whose result is up to 4 KiB), and a spec shared by every finished Workload of the same type, TTL and cancel
flag. No status is ever written from such a view: a finished state has no transition, and nothing else writes
the status of a finished Workload (``tests/unit/test_held.py`` checks every decision against the full view's).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from workload_operator.lifecycle.decide import WorkloadView
from workload_operator.lifecycle.spec import WorkloadSpec, WorkloadType
from workload_operator.lifecycle.states import TERMINAL, State
from workload_operator.lifecycle.status import WorkloadStatus


def held(view: WorkloadView) -> WorkloadView:
    """The view to keep in the index: a finished Workload's reduced to what its later decisions read; any other
    as it is (its state still moves, and every part of its status and spec may be read)."""
    if not is_reduced(view):
        return view
    status = view.status
    spec = view.spec
    ttl = spec.ttl_seconds_after_finished if spec is not None else None
    return WorkloadView(
        name=view.name, namespace=sys.intern(view.namespace), uid=view.uid, generation=view.generation,
        # completionTime only counts for the TTL: without one, Workloads finished in the same state share a status.
        status=_status(status.state, status.attempts, status.completion_time if ttl is not None else None),
        spec=_spec(spec.type, ttl, spec.cancel, spec.replicas) if spec is not None else None, spec_error=view.spec_error,
        deleting=view.deleting, finalizers=_finalizers(view.finalizers), resource_version=view.resource_version,
    )


def is_reduced(view: WorkloadView) -> bool:
    """Whether ``held`` reduces this view: a finished Workload's, with a status the operator can read."""
    return view.status.state in TERMINAL and not view.status_error


def waits_on_nothing(view: WorkloadView) -> bool:
    """Whether a finished Workload waits on nothing of its own: it is not being deleted and has no TTL to run out.
    What is left to do for it then comes only from its pods' watch events (finished pods to retire, others to
    delete) and from its deletion's, so nothing about it calls for a decision of its own until one of those
    comes (``tests/unit/test_held.py`` checks it against ``decide``)."""
    if not is_reduced(view) or view.deleting:
        return False
    return view.spec is None or view.spec.ttl_seconds_after_finished is None or view.status.completion_time is None


def _status(state: State, attempts: int, completion_time: Any) -> WorkloadStatus:
    if completion_time is None:
        return _shared_status(state, attempts)
    return WorkloadStatus(state=state, attempts=attempts, completion_time=completion_time)


@functools.lru_cache(maxsize=256)
def _shared_status(state: State, attempts: int) -> WorkloadStatus:
    return WorkloadStatus(state=state, attempts=attempts)


@functools.lru_cache(maxsize=256)
def _spec(type_: WorkloadType, ttl: int | None, cancel: bool, replicas: int) -> WorkloadSpec:
    # Not validated: a finished Workload's spec was validated when it ran; a service's port, its image and
    # the rest are never read again.
    return WorkloadSpec.model_construct(type=type_, ttl_seconds_after_finished=ttl, cancel=cancel, replicas=replicas)


@functools.lru_cache(maxsize=256)
def _finalizers(finalizers: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sys.intern(f) for f in finalizers)
