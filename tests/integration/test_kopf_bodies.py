"""kopf's bodies and patches, as the operator runs them (kopf_bodies.py, applied when the handlers are loaded): free of
reference cycles, so an event's body is freed once it is handled, and otherwise read and written as kopf's are."""

from __future__ import annotations

import contextlib
import gc
import types
import weakref
from collections.abc import Iterator

import pytest
from kopf._cogs.structs import bodies, dicts, patches

import workload_operator.handlers  # noqa: F401  (loading the handlers applies the change)
from workload_operator import kopf_bodies
from tests.harness import Cluster

POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "train-1", "namespace": "ml", "uid": "p-1", "labels": {"app": "train"},
                    "annotations": {"note": "kept"}},
       "spec": {"containers": [{"name": "main"}]}, "status": {"phase": "Running"}}


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """Reference counting alone, as between two runs of the cyclic collector."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def named(obj: object) -> str | None:
    """The name of the object a kopf body, patch or view is of (None if it is of none)."""
    match obj:
        case bodies.Body():
            return obj.get("metadata", {}).get("name")
        case patches.Patch():
            return named(obj._original)
        case dicts.MappingView():
            return named(obj._src)
    return None


@contextlib.contextmanager
def kopfs_garbage(*names: str) -> Iterator[list[object]]:
    """What only the cyclic collector could free, of kopf's bodies, patches and their views of the objects named
    (those of an earlier test's operator, still stopping, are not this test's), once the block ends."""
    found: list[object] = []
    with collector_off():
        yield found
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            found.extend(o for o in gc.garbage if isinstance(o, bodies.Body | patches.Patch | dicts.MappingView)
                         and named(o) in names)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()


def test_an_events_body_and_patch_are_freed_as_soon_as_nothing_holds_them():
    with kopfs_garbage("train-1") as garbage:
        body = bodies.Body({**POD})
        patch = patches.Patch({}, body=body)  # as kopf makes them for each event
        assert (body.meta.name, body.meta.labels["app"], body.meta.annotations["note"]) == ("train-1", "train", "kept")
        assert (body.spec["containers"][0]["name"], body.status["phase"]) == ("main", "Running")
        patch.meta.labels["retired"] = "true"
        patch.meta.annotations["why"] = "done"
        patch.status["phase"] = "Succeeded"
        freed = weakref.ref(body), weakref.ref(body.meta), weakref.ref(body.spec)
        del body, patch
        assert [ref() for ref in freed] == [None, None, None]
    assert garbage == []


def test_the_body_reads_and_replaces_its_object_as_kopfs_does():
    body = bodies.Body({**POD})
    spec, meta, labels = body.spec, body.meta, body.meta.labels  # views taken before the object is replaced
    assert body.meta is meta and body.metadata is meta  # the same view each time, as in kopf
    body._replace_with({**POD, "spec": {"nodeName": "n-1"}, "metadata": {"name": "train-1", "labels": {"a": "b"}}})
    assert (dict(spec), dict(labels), meta.uid, dict(body.meta.annotations)) == ({"nodeName": "n-1"}, {"a": "b"}, None, {})
    body._replace_from(bodies.Body({"status": {"phase": "Failed"}}))  # kopf's other way: from another view
    assert (body.status["phase"], dict(spec), body["status"]) == ("Failed", {}, {"phase": "Failed"})


def test_the_patch_writes_into_itself_as_kopfs_does():
    body = bodies.Body({**POD})
    patch = patches.Patch({"spec": {"x": 1}}, body=body, fns=[print])
    patch.meta.labels["retired"] = "true"
    patch.metadata.annotations["why"] = "done"  # a second view of metadata writes to the same dict
    patch.status["phase"] = "Succeeded"
    del patch.spec["x"]
    assert patch == {"metadata": {"labels": {"retired": "true"}, "annotations": {"why": "done"}},
                     "status": {"phase": "Succeeded"}, "spec": {}}
    assert patch.meta.labels == {"retired": "true"} and patch._original is body and patch.fns == [print]
    assert patches.Patch(patch).fns == [print] and bool(patches.Patch()) is False
    assert {"op": "replace", "path": "/status/phase", "value": "Succeeded"} in patch.as_json_patch()  # from the body


async def test_a_lifecycle_under_the_operator_leaves_none_of_kopfs_bodies_to_the_collector(cluster: Cluster, operator):
    with kopfs_garbage("freed", "freed-1") as garbage:
        await cluster.start_running("freed")
        await cluster.pod_exited("freed-1", 0)
        await cluster.wait_state("freed", "completed")
    assert garbage == []


def test_applied_once():
    assert kopf_bodies.free_event_bodies_by_refcount() is True
    assert bodies.Body.__init__ is kopf_bodies._body_init


@pytest.mark.parametrize("moved", [
    {"bodies": None},  # a kopf that moved its modules
    {"bodies": types.SimpleNamespace(Body=type("Body", (), {}))},  # a Body of another shape
])
def test_a_kopf_of_another_shape_is_left_alone(monkeypatch, caplog, moved):
    for name, value in moved.items():
        monkeypatch.setattr(kopf_bodies, name, value)
    assert kopf_bodies.free_event_bodies_by_refcount() is False
    assert "until the garbage collector frees it" in caplog.text
