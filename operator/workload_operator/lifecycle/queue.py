"""Admission: which queued workloads may start, and where the others stand (pure).

A workload is active from preparing to stopping (it holds a pod). Queued workloads are
admitted in order of spec.priority (higher first), then creation time, then name, while
the number of active workloads is under the limits of the Policy: ``max_active`` over all
the namespaces the operator serves and ``max_active_per_namespace`` in each; when both are
set, both must have room. A workload re-queued after a lost worker keeps its creation
time, so it keeps its place among workloads of its priority.
"""

from __future__ import annotations

from collections.abc import Iterable

from workload_operator.lifecycle.decide import Admission, Policy, WorkloadView
from workload_operator.lifecycle.states import State
from workload_operator.lifecycle.status import ACTIVE_STATES


def queue_order(view: WorkloadView) -> tuple[int, str, str]:
    priority = view.spec.priority if view.spec is not None else 0
    return (-priority, view.created, view.name)


def _stand(view: WorkloadView, scope: list[WorkloadView], limit: int) -> Admission:
    queued = sorted((v for v in scope if v.status.state is State.QUEUED and not v.cancel_requested), key=queue_order)
    active = sum(1 for v in scope if v.status.state in ACTIVE_STATES)
    position = next((i for i, v in enumerate(queued, 1) if v.uid == view.uid), len(queued) + 1)
    return Admission(admitted=position <= limit - active, position=position, queued=len(queued), active=active, limit=limit)


def admission(view: WorkloadView, everyone: Iterable[WorkloadView], policy: Policy) -> Admission | None:
    """Where ``view`` (queued) stands; None when no limit is set. The tighter of the two limits speaks."""
    everyone = list(everyone)
    stands = []
    if policy.max_active is not None:
        stands.append(_stand(view, everyone, policy.max_active))
    if policy.max_active_per_namespace is not None:
        local = [v for v in everyone if v.namespace == view.namespace]
        stands.append(_stand(view, local, policy.max_active_per_namespace))
    if not stands:
        return None
    blocking = [s for s in stands if not s.admitted]
    return blocking[0] if blocking else stands[0]


def free_slots(namespace: str, everyone: Iterable[WorkloadView], policy: Policy) -> int:
    """How many queued workloads could start now in ``namespace`` (unbounded: the number queued)."""
    everyone = list(everyone)
    active_all = sum(1 for v in everyone if v.status.state in ACTIVE_STATES)
    local = [v for v in everyone if v.namespace == namespace]
    active_local = sum(1 for v in local if v.status.state in ACTIVE_STATES)
    room = [sum(1 for v in local if v.status.state is State.QUEUED)]
    if policy.max_active is not None:
        room.append(policy.max_active - active_all)
    if policy.max_active_per_namespace is not None:
        room.append(policy.max_active_per_namespace - active_local)
    return max(0, min(room))
