"""kopf's per-object event queues, as the operator runs it (kopf_backlog.py, applied when the handlers are loaded):
each object's events reach its worker in order, through a Backlog instead of an asyncio.Queue."""

from __future__ import annotations

import asyncio
import tracemalloc
import types

import kopf
import pytest
from kopf._core.reactor import queueing

import workload_operator.handlers  # noqa: F401  (loading the handlers applies the change)
from workload_operator import kopf_backlog
from workload_operator.kopf_backlog import Backlog


def event(uid: str, version: int) -> dict:
    return {"type": "MODIFIED", "object": {"metadata": {"uid": uid, "resourceVersion": str(version)}}}


async def test_kopfs_watcher_hands_each_objects_events_in_order_to_its_worker_through_a_backlog(monkeypatch):
    queued: list[object] = []
    original = kopf_backlog.Backlog.put

    async def put(self, item):  # the queues kopf's watcher makes, as it fills them
        queued.append(type(self))
        await original(self, item)

    monkeypatch.setattr(kopf_backlog.Backlog, "put", put)
    stream = [event("a", 1), event("b", 2), event("a", 3), event("a", 4), event("b", 5)]

    async def infinite_watch(**_):  # kopf's stream: these events, then nothing more
        for item in stream:
            yield item
        await asyncio.Event().wait()

    monkeypatch.setattr(queueing.watching, "infinite_watch", infinite_watch)
    seen: dict[str, list[str]] = {}
    done = asyncio.Event()

    async def processor(*, raw_event, **_):
        await asyncio.sleep(0.01)  # a handler that takes a moment: the object's later events wait in its backlog
        meta = raw_event["object"]["metadata"]
        seen.setdefault(meta["uid"], []).append(meta["resourceVersion"])
        if sum(map(len, seen.values())) == len(stream):
            done.set()

    settings = kopf.OperatorSettings()
    watcher = asyncio.create_task(queueing.watcher(namespace=None, settings=settings, resource=None,
                                                   processor=processor))
    await asyncio.wait_for(done.wait(), timeout=5)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    assert seen == {"a": ["1", "3", "4"], "b": ["2", "5"]}
    assert queued[:len(stream)] == [Backlog] * len(stream)  # (then one end-of-stream each, as the watcher stops)


async def test_a_get_that_times_out_or_is_cancelled_loses_nothing():
    backlog = Backlog()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backlog.get(), timeout=0.01)  # as kopf's worker waits, then exits when idle
    assert backlog.empty()
    getter = asyncio.create_task(backlog.get())
    await asyncio.sleep(0)
    backlog.put_nowait("first")  # it wakes the getter; cancelled before it runs, the event stays queued
    getter.cancel()
    await asyncio.gather(getter, return_exceptions=True)
    await backlog.put("second")
    assert backlog.qsize() == 2 and await backlog.get() == "first" and backlog.get_nowait() == "second"
    with pytest.raises(asyncio.QueueEmpty):
        backlog.get_nowait()


async def test_a_backlog_has_one_consumer():
    backlog = Backlog()
    first = asyncio.create_task(backlog.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one consumer"):
        await backlog.get()
    backlog.put_nowait("event")
    assert await first == "event"


async def test_a_backlog_is_a_fraction_of_an_asyncio_queue():
    def allocated(make) -> int:
        tracemalloc.start()
        try:
            kept = [make() for _ in range(100)]
            return tracemalloc.get_traced_memory()[0] // len(kept)
        finally:
            tracemalloc.stop()

    assert allocated(Backlog) * 10 < allocated(asyncio.Queue)


def test_the_operator_runs_with_kopfs_queues_replaced_once():
    assert queueing.asyncio.Queue is Backlog and queueing.asyncio.wait_for is asyncio.wait_for
    assert kopf_backlog.queue_events_in_backlogs() is True  # again: not replaced twice
    assert queueing.asyncio.Queue is Backlog


def test_a_kopf_whose_queueing_moved_is_left_alone(monkeypatch, caplog):
    monkeypatch.setattr(kopf_backlog, "queueing", types.SimpleNamespace(asyncio=asyncio))  # a kopf without it
    assert kopf_backlog.queue_events_in_backlogs() is False
    assert "queued in an asyncio.Queue" in caplog.text
