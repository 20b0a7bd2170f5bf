"""A fix for what kopf spends per watch event on its handlers' keyword arguments, applied when the handlers load.

kopf hands every handler and index function the same keyword arguments, built from the event's cause:
``spec``, ``meta``, ``status``, ``uid``, ``name``, ``namespace``, ``labels``, ``annotations`` (each read through
kopf's lazy ``MappingView``, which walks the body from its root on every read), the cause's own fields and the
indexes. kopf 1.45 builds that dict anew each time it is asked: twice for every handler call (once to pass to
the lifecycle, which selects the handlers to run, and again to invoke the handler), and the body's part again for
every cause of the same event (the index functions' and the event handlers'). For the operator, four builds per
watch event, where one of the body's part and one per cause would do: kopf alone, with handlers that do nothing,
spent 12% of its samples in ``ResourceCause._kwargs`` on a real API server (docs/performance.md, "kopf's floor").

Here a cause builds its arguments once (they depend only on its fields, which nothing changes once it is made:
a handler that needs other values gets a new cause from ``dataclasses.replace``), and the body's part is built
once per body (and again if the body is replaced with a newer one, as kopf does for daemons' bodies). Should
kopf's classes move or change shape, nothing is patched (with a warning): the operator then spends as kopf does.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

try:  # kopf's private modules: guarded
    from kopf._core.actions import invocation
    from kopf._core.intents import causes
except ImportError:  # pragma: no cover - a kopf that moved them
    invocation = causes = None  # type: ignore[assignment]

_CAUSE_KWARGS = "_workload_operator_kwargs"  # in a cause's __dict__: its _kwargs, built once
_BODY_KWARGS = "_workload_operator_kwargs"   # in a body's __dict__: (the raw body it was built from, its part)


def _cause_kwargs(self: Any) -> dict[str, Any]:
    """The cause's ``_kwargs``, built on first use. Callers copy it (``|``, ``dict(...)``); none changes it."""
    try:
        return self.__dict__[_CAUSE_KWARGS]  # type: ignore[no-any-return]
    except KeyError:
        kwargs = self.__dict__[_CAUSE_KWARGS] = self._kwargs
        return kwargs  # type: ignore[no-any-return]


def _resource_kwargs(self: Any) -> dict[str, Any]:
    """``ResourceCause._kwargs``, with the body's part read once per body."""
    body = self.body
    built = body.__dict__.get(_BODY_KWARGS)
    if built is None or built[0] is not body._src:
        meta = body.metadata
        built = body.__dict__[_BODY_KWARGS] = (body._src, dict(
            spec=body.spec, meta=meta, status=body.status, uid=meta.uid, name=meta.name,
            namespace=meta.namespace, labels=meta.labels, annotations=meta.annotations))
    return dict(causes.BaseCause._kwargs.fget(self), **built[1])  # type: ignore[attr-defined]


def build_handler_kwargs_once() -> bool:
    """Make kopf build a cause's handler arguments once, and the body's part once per body; whether it could."""
    kwargable = getattr(invocation, "Kwargable", None)
    resource_cause, base_cause = getattr(causes, "ResourceCause", None), getattr(causes, "BaseCause", None)
    shaped = (kwargable is not None and resource_cause is not None and base_cause is not None
              and all(isinstance(kwargable.__dict__.get(name), property)
                      for name in ("_kwargs", "_sync_kwargs", "_async_kwargs", "kwargs", "sync_kwargs", "async_kwargs"))
              and isinstance(base_cause.__dict__.get("_kwargs"), property)
              and isinstance(resource_cause.__dict__.get("_kwargs"), property)
              and {"body"} <= set(resource_cause.__dataclass_fields__))
    if not shaped:
        logger.warning("kopf's causes have moved or changed: their handler arguments are built as kopf builds them")
        return False
    # kopf: kwargs = _kwargs | _super_kwargs, and the same with _sync_kwargs and _async_kwargs, which are _kwargs
    # unless a cause adds to them (a daemon's `stopped`, on top of super()'s).
    kwargable.kwargs = property(lambda self: _cause_kwargs(self) | self._super_kwargs)  # type: ignore[method-assign]
    kwargable._sync_kwargs = property(_cause_kwargs)  # type: ignore[method-assign]
    kwargable._async_kwargs = property(_cause_kwargs)  # type: ignore[method-assign]
    resource_cause._kwargs = property(_resource_kwargs)  # type: ignore[method-assign]
    return True
