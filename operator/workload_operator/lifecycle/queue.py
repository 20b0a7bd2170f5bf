"""Admission: which queued workloads may start, and where the others stand (pure).

A workload is active from preparing to stopping (it holds a pod). Queued workloads are
admitted in order of spec.priority (higher first), then creation time, then name (a workload waiting to
retry a pod the API server refused goes behind all others), while
the number of active workloads is under the limits of the Policy (a Workload that names a Kueue LocalQueue
is Kueue's to admit, and takes no place here): ``max_active`` over all
the namespaces the operator serves and ``max_active_per_namespace`` in each; when both are
set, both must have room. A workload re-queued after a lost worker keeps its creation
time, so it keeps its place among workloads of its priority.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

from workload_operator.lifecycle.decide import Admission, CreationRefusal, Policy, WorkloadView
from workload_operator.lifecycle.states import State
from workload_operator.lifecycle.status import ACTIVE_STATES


# Waiting to retry a pod the API server refused: such a workload must not hold the head of the queue.
RETRYING_CREATION = frozenset({CreationRefusal.NAME_CONFLICT.value, CreationRefusal.REFUSED.value})


def queue_order(view: WorkloadView) -> tuple[bool, int, str, str]:
    """Priority, then age, then name; a workload whose pod was refused goes behind those that may start now."""
    priority = view.spec.priority if view.spec is not None else 0
    return (view.status.reason in RETRYING_CREATION, -priority, view.created, view.name)


def admitted_by_kueue(view: WorkloadView) -> bool:
    """Kueue's queues decide when it runs: the operator's own limits neither hold it nor count it."""
    return view.spec is not None and view.spec.queue_name is not None


def standings(everyone: Iterable[WorkloadView], policy: Policy) -> dict[str, Admission]:
    """Where every queued workload stands, by uid, in one pass over the queue per limit ({} with no limit).

    A workload is admitted when its position among the queued of a scope is within that scope's free
    room (limit minus active). With both limits, the tighter speaks: the first that refuses, else the global one.
    A queued workload whose cancel was requested takes no place (and has no standing).
    """
    everyone = [v for v in everyone if not admitted_by_kueue(v)]
    queued = sorted((v for v in everyone if v.status.state is State.QUEUED and not v.cancel_requested), key=queue_order)
    limits: list[tuple[int, Callable[[WorkloadView], str]]] = []
    if policy.max_active is not None:
        limits.append((policy.max_active, lambda v: ""))                  # one scope: every namespace served
    if policy.max_active_per_namespace is not None:
        limits.append((policy.max_active_per_namespace, lambda v: v.namespace))
    result: dict[str, Admission] = {}
    for limit, scope_of in limits:
        active = collections.Counter(scope_of(v) for v in everyone if v.status.state in ACTIVE_STATES)
        waiting = collections.Counter(scope_of(v) for v in queued)
        position: collections.Counter[str] = collections.Counter()
        for v in queued:
            scope = scope_of(v)
            position[scope] += 1
            stand = Admission(admitted=position[scope] <= limit - active[scope], position=position[scope],
                              queued=waiting[scope], active=active[scope], limit=limit)
            if v.uid not in result or (result[v.uid].admitted and not stand.admitted):
                result[v.uid] = stand
    return result


def admission(view: WorkloadView, everyone: Iterable[WorkloadView], policy: Policy) -> Admission | None:
    """Where ``view`` (queued) stands, judged with ``view`` as given; None when no limit is set (or when it
    takes no place in the queue: its cancel was requested, which the core handles before admission)."""
    return standings([view, *(v for v in everyone if v.uid != view.uid)], policy).get(view.uid)
