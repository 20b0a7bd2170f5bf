"""Admission order and limits (queue.py), without any I/O."""

import pytest

from tests.unit.test_decide import status_in
from workload_operator.lifecycle.decide import Policy, WorkloadView
from workload_operator.lifecycle.queue import admission, free_slots, queue_order


def workload(name: str, state: str, *, priority: int = 0, created: str = "2026-11-23T12:00:00Z",
             namespace: str = "ml", cancel: bool = False) -> WorkloadView:
    return WorkloadView.from_body({
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
                     "creationTimestamp": created, "resourceVersion": "1"},
        "spec": {"image": "busybox", "priority": priority, "cancel": cancel},
        "status": status_in(state).model_dump(mode="json", by_alias=True, exclude_none=True),
    })


def test_order_is_priority_then_age_then_name():
    views = [
        workload("old-low", "queued", priority=0, created="2026-11-23T10:00:00Z"),
        workload("new-high", "queued", priority=5, created="2026-11-23T12:00:00Z"),
        workload("b-same", "queued", priority=0, created="2026-11-23T11:00:00Z"),
        workload("a-same", "queued", priority=0, created="2026-11-23T11:00:00Z"),
        workload("negative", "queued", priority=-3, created="2026-11-23T09:00:00Z"),
    ]
    assert [v.name for v in sorted(views, key=queue_order)] == ["new-high", "old-low", "a-same", "b-same", "negative"]


def test_no_limit_means_no_admission_control():
    assert admission(workload("w", "queued"), [workload("w", "queued")], Policy()) is None


def test_the_first_ones_in_order_take_the_free_slots():
    active = [workload("a1", "running"), workload("a2", "serving")]
    queued = [workload("q-low", "queued", created="2026-11-23T10:00:00Z"), workload("q-high", "queued", priority=1),
              workload("q-late", "queued", created="2026-11-23T13:00:00Z")]
    everyone = active + queued
    policy = Policy(max_active=3)
    stands = {v.name: admission(v, everyone, policy) for v in queued}
    assert [(n, s.admitted, s.position) for n, s in stands.items()] == [
        ("q-low", False, 2), ("q-high", True, 1), ("q-late", False, 3)]
    assert stands["q-low"].active == 2 and stands["q-low"].limit == 3 and stands["q-low"].queued == 3
    assert free_slots("ml", everyone, policy) == 1


@pytest.mark.parametrize("finished", ["completed", "failed", "cancelled", "queued", "orphaned"])
def test_only_states_that_hold_a_pod_count_as_active(finished):
    everyone = [workload("other", finished), workload("w", "queued")]
    assert admission(everyone[1], everyone, Policy(max_active=1)).admitted == (finished not in ("queued",))


def test_a_cancelled_queued_workload_does_not_hold_a_place():
    everyone = [workload("leaving", "queued", cancel=True, created="2026-11-23T09:00:00Z"), workload("w", "queued")]
    assert admission(everyone[1], everyone, Policy(max_active=1)).position == 1


def test_per_namespace_and_global_limits_both_apply():
    everyone = [workload("busy", "running", namespace="a"), workload("w", "queued", namespace="b"),
                workload("x", "queued", namespace="a")]
    per_namespace = Policy(max_active_per_namespace=1)
    assert admission(everyone[1], everyone, per_namespace).admitted          # b has room
    assert not admission(everyone[2], everyone, per_namespace).admitted      # a is full
    both = Policy(max_active=1, max_active_per_namespace=1)
    refused = admission(everyone[1], everyone, both)
    assert not refused.admitted and refused.limit == 1 and refused.active == 1  # the global limit speaks
    assert free_slots("b", everyone, both) == 0 and free_slots("b", everyone, per_namespace) == 1
