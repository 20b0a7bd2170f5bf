"""A lighter queue for each watched object's events in kopf, applied when the handlers load.

kopf gives every object it sees a stream: an ``asyncio.Queue`` of its watch events and an ``asyncio.Event`` that
says more are waiting, read by the object's one worker. The queue alone allocates three deques (its items, its
getters, its putters: about 760 bytes each, empty) and an ``asyncio.Event`` of its own for ``join()``, which kopf
never calls: 4.2 kB per object with the pressure event, measured with tracemalloc. kopf keeps a stream for as
long as its worker lives: every object listed at start-up until every index is filled, every object with an event
in a burst, each for a few seconds after its last event.

``Backlog`` is what kopf's worker uses of a queue (``put``, ``get``, ``empty``) for one consumer: a list and, while
the worker waits, one future. As with ``asyncio.Queue``, an event stays queued until ``get`` returns it, so a
cancelled or timed-out ``get`` loses nothing. kopf's queueing module makes its streams' queues with
``asyncio.Queue()``; that module's ``asyncio`` is given ``Backlog`` as its ``Queue`` and everything else from
``asyncio`` itself. Should the module move or change shape, nothing is patched (with a warning): kopf then keeps
its own queues, as heavy and as correct.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import types
from typing import Any

logger = logging.getLogger(__name__)

try:
    from kopf._core.reactor import queueing  # kopf's private module: guarded
except ImportError:  # pragma: no cover - a kopf that moved it
    queueing = None  # type: ignore[assignment]


class Backlog:
    """A first-in first-out queue with one consumer: what kopf's per-object worker reads its events from."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)  # a backlog holds an event or two: a list beats a deque's 760 bytes

    async def get(self) -> Any:
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("a Backlog has one consumer: another one waits already")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


BACKLOG_METHODS = frozenset({"qsize", "empty", "put_nowait", "put", "get_nowait", "get"})


class _AsyncioWithBacklogs(types.ModuleType):
    """``asyncio`` as kopf's queueing module sees it: its ``Queue`` is ``Backlog``, the rest is asyncio's own."""

    Queue = Backlog
    makes_backlogs = True

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def queue_events_in_backlogs() -> bool:
    """Make kopf queue each object's events in a ``Backlog``, not an ``asyncio.Queue``; whether it could."""
    current = getattr(queueing, "asyncio", None)
    if getattr(current, "makes_backlogs", False):
        return True  # applied already
    try:
        source = inspect.getsource(queueing) if current is asyncio else ""
    except (OSError, TypeError):
        source = ""
    used = set(re.findall(r"backlog\.(\w+)", source))  # what kopf calls on its queues: all of it Backlog's
    if "asyncio.Queue()" not in source or not used or not used <= BACKLOG_METHODS:
        logger.warning("kopf's queueing has moved or changed: each object's events are queued in an asyncio.Queue")
        return False
    queueing.asyncio = _AsyncioWithBacklogs("asyncio")
    return True
