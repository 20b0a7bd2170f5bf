"""A fix for the memory kopf keeps of every watch event it has handled, applied when the handlers load.

kopf wraps each watch event's object in a ``Body`` and gives the event a ``Patch``. Both are reference cycles:
a body holds its ``meta``, ``spec`` and ``status`` views, and each view reads through the body; ``meta`` also
holds its ``labels`` and ``annotations`` views, which read through ``meta``; a patch holds views that write into
it. Reference counting never frees a cycle, so every event's body (its whole parsed object, about 11 kB for a
Workload here) stays in memory after the event is handled, until the cyclic garbage collector reaches the
generation it has aged into. Under a burst, an event's body is still in use when a young collection runs, so it
ages; the oldest generation is collected rarely. Once a burst of 1,000 batch Workloads had settled on the
project's control plane, a full collection freed 204,828 objects, and 53 of the 88 MB pymalloc had in use
(in a second run it listed what it found: kopf's bodies and patches, their views and the objects they held,
and nothing else); until then they filled the memory the burst had taken.

Here nothing of a body or a patch refers back to it: a body's views read through a small holder of the body's
source that the body shares with them (replacing the body's source, as kopf does for daemons, replaces the
holder's, so every view still sees the new object), ``meta``'s own views read from the source with the longer
path, and a patch makes its views when asked for them (they are views: two made at different times read and
write the same dict). Reference counting then frees an event's body and patch as soon as kopf and the handlers
let go of them. Should kopf's classes move or change shape, nothing is patched (with a warning): the operator
then keeps what kopf keeps.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

try:  # kopf's private modules: guarded
    from kopf._cogs.structs import bodies, dicts, patches
except ImportError:  # pragma: no cover - a kopf that moved them
    bodies = dicts = patches = None  # type: ignore[assignment]

_APPLIED = "_workload_operator_acyclic"  # set on kopf's Body class once patched


def _body_init(self: Any, src: Any, /) -> None:
    dicts.ReplaceableMappingView.__init__(self, src)
    source = self._source = dicts.ReplaceableMappingView(src)  # what the body's views read through: not the body
    self._meta = bodies.Meta(source)
    self._spec = bodies.Spec(source)
    self._status = bodies.Status(source)


def _body_replace_with(self: Any, src: Any, /) -> None:
    self._src = self._source._src = src


def _body_replace_from(self: Any, view: Any, /) -> None:
    _body_replace_with(self, view._src)


def _meta_init(self: Any, src: Any, /) -> None:
    dicts.MappingView.__init__(self, src, "metadata")
    self._labels = dicts.MappingView(src, ("metadata", "labels"))
    self._annotations = dicts.MappingView(src, ("metadata", "annotations"))


def _meta_patch_init(self: Any, src: Any, /) -> None:
    dicts.MutableMappingView.__init__(self, src, "metadata")
    self._labels = dicts.MutableMappingView(src, ("metadata", "labels"))
    self._annotations = dicts.MutableMappingView(src, ("metadata", "annotations"))


def _patch_init(self: Any, src: dict[str, Any] | None = None, /, body: Any = None, fns: Any = ()) -> None:
    dict.__init__(self, src or {})
    self._original = body
    self._fns = (src.fns if isinstance(src, patches.Patch) else []) + list(fns)


def _kopfs_shape_is_known() -> bool:
    """kopf's classes build their views as this module expects of kopf 1.45 (the cycles it replaces)."""
    try:
        body = bodies.Body({"metadata": {"labels": {}}})
        patch = patches.Patch({}, body=body)
        return (body.meta._src is body and body.meta.labels._src is body.meta and body.spec._src is body
                and body.status._src is body and patch.meta._src is patch and patch.meta.labels._src is patch.meta
                and patch.spec._src is patch and patch.status._src is patch and patch._original is body
                and isinstance(patch._fns, list)
                and all(isinstance(patches.Patch.__dict__.get(name), property)
                        for name in ("metadata", "meta", "spec", "status")))
    except Exception:  # noqa: BLE001 - any other shape
        return False


def free_event_bodies_by_refcount() -> bool:
    """Make kopf's bodies and patches free of reference cycles; whether it could."""
    if bodies is None or dicts is None or patches is None:
        logger.warning("kopf's bodies have moved: each event's body is kept until the garbage collector frees it")
        return False
    if getattr(bodies.Body, _APPLIED, False):
        return True  # applied already
    if not _kopfs_shape_is_known():
        logger.warning("kopf's bodies have changed: each event's body is kept until the garbage collector frees it")
        return False
    bodies.Body.__init__ = _body_init  # type: ignore[method-assign]
    bodies.Body._replace_with = _body_replace_with  # type: ignore[method-assign]
    bodies.Body._replace_from = _body_replace_from  # type: ignore[method-assign]
    bodies.Meta.__init__ = _meta_init  # type: ignore[method-assign]
    patches.MetaPatch.__init__ = _meta_patch_init  # type: ignore[method-assign]
    patches.Patch.__init__ = _patch_init  # type: ignore[method-assign]
    meta = property(lambda self: patches.MetaPatch(self))
    patches.Patch.metadata = patches.Patch.meta = meta  # type: ignore[method-assign,assignment]
    patches.Patch.spec = property(lambda self: patches.SpecPatch(self))  # type: ignore[method-assign,assignment]
    patches.Patch.status = property(lambda self: patches.StatusPatch(self))  # type: ignore[method-assign,assignment]
    setattr(bodies.Body, _APPLIED, True)
    return True
