"""Watching with the official (synchronous) client from asyncio code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import kubernetes


async def watch(list_fn: Callable[..., Any], stop: threading.Event, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
    """The official client's watch, run in a thread, as an async stream of {type, object} (raw dicts)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def pump() -> None:
        while not stop.is_set():
            try:
                for event in kubernetes.watch.Watch().stream(list_fn, *args, timeout_seconds=2, **kwargs):
                    loop.call_soon_threadsafe(queue.put_nowait, {"type": event["type"], "object": event["raw_object"]})
                    if stop.is_set():
                        return
            except Exception:  # the API going away at shutdown, or a hiccup: try again
                if stop.wait(0.5):
                    return

    threading.Thread(target=pump, daemon=True, name=f"watch-{getattr(list_fn, '__name__', 'list')}").start()
    while True:
        yield await queue.get()
