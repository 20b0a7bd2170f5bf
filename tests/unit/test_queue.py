"""Admission order and limits (queue.py), without any I/O."""

import pytest

from tests.unit.test_decide import status_in
from workload_operator.lifecycle.decide import Policy, WorkloadView
from workload_operator.lifecycle.queue import admission, queue_order, standings


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
    assert [uid for uid, s in standings(everyone, policy).items() if s.admitted] == ["uid-ml-q-high"]


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
    assert not standings(everyone, both)["uid-b-w"].admitted and standings(everyone, per_namespace)["uid-b-w"].admitted


def test_a_slot_freed_under_a_global_limit_serves_any_namespace():
    """Found in review: the wake-up after a slot freed in `a` counted only the queue of `a`, so `b` waited."""
    everyone = [workload("done", "completed", namespace="a"), workload("next", "queued", namespace="b")]
    assert standings(everyone, Policy(max_active=1)) == {"uid-b-next": admission(everyone[1], everyone, Policy(max_active=1))}
    assert standings(everyone, Policy(max_active=1))["uid-b-next"].admitted


def test_every_queued_workload_has_a_standing_but_a_cancelled_one():
    everyone = [workload("busy", "running", namespace="a"), workload("w", "queued", namespace="b"),
                workload("x", "queued", namespace="a"), workload("y", "queued", namespace="b", priority=2),
                workload("gone", "queued", namespace="a", cancel=True)]
    for policy in (Policy(max_active=2), Policy(max_active_per_namespace=1), Policy(max_active=2, max_active_per_namespace=1)):
        stands = standings(everyone, policy)
        assert set(stands) == {"uid-b-w", "uid-a-x", "uid-b-y"}  # the cancelled one takes no place
