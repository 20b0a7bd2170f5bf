"""What kopf keeps of each object it watches: ``metadata.managedFields`` dropped on arrival, applied when the
handlers load.

A real API server gives every object its managedFields: who set which field, for server-side apply. Neither kopf
nor the operator reads them, yet on a real server they were 1.9 kB of the 4.0 kB of JSON of a finished Workload
(6.8 of its 17.5 kB as Python objects) and 1.2 of the 3.1 kB of a finished pod (2.2 of 12.1 kB), measured on the
project's control plane. kopf holds the bodies it receives for as long as their events wait: every object listed
at start-up until every index is filled, every event queued behind a busy object in a burst. client-go's informers
(``SetTransform``) and controller-runtime's cache (``TransformStripManagedFields``) drop them for this reason; kopf
has no such hook, so here the stream kopf reads its listings and watch events from drops them before kopf sees the
object. The operator never sends a body it received back to the server (its writes are patches), so nothing it
writes can lose them. Should kopf's stream move or change shape, nothing is patched (with a warning).

The same stream leaves out the watch events and listed objects the operator says kopf need not see
(``skip_on_arrival``, set by the handlers at start-up: the echoes of its own writes, and the finished Workloads it
holds itself): kopf would dispatch each of them to the index functions and handlers (about 1 ms of CPU on a real
server) only for them to find they hold it already, or have nothing to do.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

logger = logging.getLogger(__name__)

try:
    from kopf._cogs.clients import watching  # kopf's private module: guarded
except ImportError:  # pragma: no cover - a kopf that moved it
    watching = None  # type: ignore[assignment]

# (kopf's resource, a listed object or watch event) -> whether kopf need not see it; None: kopf sees everything.
skip_on_arrival: Callable[[Any, Any], bool] | None = None


def without_managed_fields(item: Any) -> Any:
    """A listed object or watch event (kopf's ``{"type": ..., "object": ...}``), its object's managedFields gone."""
    obj = item.get("object") if isinstance(item, dict) else None
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return item


def _skips(skip: Callable[[Any, Any], bool], resource: Any, item: Any) -> bool:
    try:
        return skip(resource, item)
    except Exception:  # an error of the operator's must not end kopf's watch: kopf sees what it was not told to skip
        logger.exception("could not tell whether kopf need see a watch event; it does")
        return False


def drop_managed_fields_on_arrival() -> bool:
    """Make kopf's watch streams drop every object's managedFields before kopf sees it; whether it could."""
    stream = getattr(watching, "continuous_watch", None)
    if not inspect.isasyncgenfunction(stream) or "operator_pause_waiter" not in inspect.signature(stream).parameters:
        logger.warning("kopf's watch stream has moved or changed: objects are kept with their managedFields")
        return False
    if getattr(stream, "drops_managed_fields", False):
        return True  # applied already

    @functools.wraps(stream)
    async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
        resource = kwargs.get("resource")
        async with contextlib.aclosing(stream(**kwargs)) as events:
            async for item in events:
                if skip_on_arrival is not None and _skips(skip_on_arrival, resource, item):
                    continue
                yield without_managed_fields(item)

    continuous_watch.drops_managed_fields = True  # type: ignore[attr-defined]
    watching.continuous_watch = continuous_watch
    return True
