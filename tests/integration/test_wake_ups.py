"""The operator's wake-ups (Runtime.wake_at), without an API: a decision's wake-up replaces the pending one;
the retry-later of a reconcile that ran out of retries never postpones a sooner one (a deadline, a TTL)."""

from __future__ import annotations

import asyncio
import datetime

from tests.unit.test_queue import workload
from workload_operator.handlers import Runtime
from workload_operator.lifecycle.decide import Policy


def seconds_left(runtime: Runtime, uid: str) -> float:
    return runtime.timers[uid].when() - asyncio.get_running_loop().time()


async def test_a_retry_later_keeps_a_sooner_wake_up_and_replaces_a_later_one():
    runtime = Runtime(kube=None)  # type: ignore[arg-type]  (no API call is made)
    now = runtime.clock()
    try:
        runtime.wake_at("w", now + datetime.timedelta(seconds=10))       # a deadline in 10 s
        runtime.wake_at("w", now + datetime.timedelta(seconds=30), unless_sooner=True)
        assert seconds_left(runtime, "w") < 11

        runtime.wake_at("w", now + datetime.timedelta(seconds=300))      # a new decision: a TTL in 300 s
        assert seconds_left(runtime, "w") > 290
        runtime.wake_at("w", now + datetime.timedelta(seconds=30), unless_sooner=True)
        assert 20 < seconds_left(runtime, "w") < 31
        assert len(runtime.timers) == 1
    finally:
        for timer in runtime.timers.values():
            timer.cancel()


def test_a_slot_freed_in_one_namespace_wakes_the_next_in_another_under_a_global_limit():
    """Found in review: the queue's wake-up counted only the namespace where the slot was freed."""
    runtime = Runtime(kube=None, policy=Policy(max_active=1))  # type: ignore[arg-type]
    views = [workload("done", "completed", namespace="a"), workload("next", "queued", namespace="b"),
             workload("later", "queued", namespace="b", created="2026-11-23T13:00:00Z")]
    runtime.workloads = {v.uid: [v] for v in views}
    woken: list[str] = []
    runtime.wake = woken.append  # type: ignore[method-assign]
    runtime.wake_queue()
    assert woken == ["uid-b-next"]
