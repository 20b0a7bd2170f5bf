"""kopf's handler arguments, as the operator runs it (kopf_dispatch.py, applied when the handlers are loaded): built
once per cause, the body's part once per body, and the same values as kopf's own."""

from __future__ import annotations

import logging
import types

import kopf
from kopf._cogs.structs import bodies, patches
from kopf._core.intents import causes

import workload_operator.handlers  # noqa: F401  (loading the handlers applies the fix)
from workload_operator import kopf_dispatch

RAW = {"apiVersion": "ml.lifecycle.dev/v1alpha1", "kind": "Workload",
       "metadata": {"name": "train-1", "namespace": "ml", "uid": "u-1", "labels": {"team": "a"}},
       "spec": {"image": "busybox"}, "status": {"state": "running"}}


class CountingBody(bodies.Body):
    """Counts the reads of the body's metadata: each build of the body's part reads it once."""

    reads = 0

    @property
    def metadata(self) -> bodies.Meta:
        CountingBody.reads += 1
        return super().metadata


def cause(cls: type, body: bodies.Body, **fields) -> causes.ResourceCause:
    return cls(resource=None, indices={"pods_by_workload": "index"}, memo=kopf.Memo(), logger=logging.getLogger(),
               patch=patches.Patch(), body=body, **fields)


def test_an_events_causes_build_the_bodys_arguments_once_and_their_own_once_each():
    CountingBody.reads = 0
    body = CountingBody(RAW)
    indexing = cause(causes.IndexingCause, body)
    watching = cause(causes.WatchingCause, body, type="MODIFIED", event={"type": "MODIFIED", "object": RAW})
    for each in (indexing, watching):  # as kopf does per handler: once for the lifecycle, once to invoke it
        assert each.kwargs["name"] == "train-1" and each.async_kwargs["uid"] == "u-1"
    assert CountingBody.reads == 1  # kopf 1.45 alone: 4


def test_the_arguments_are_kopfs_own():
    body = bodies.Body(RAW)
    watching = cause(causes.WatchingCause, body, type="MODIFIED", event={"type": "MODIFIED", "object": RAW})
    kwargs = watching.kwargs
    assert {k: kwargs[k] for k in ("uid", "name", "namespace", "type")} == {
        "uid": "u-1", "name": "train-1", "namespace": "ml", "type": "MODIFIED"}
    assert kwargs["pods_by_workload"] == "index" and "indices" not in kwargs  # the indexes by name, as kopf
    assert dict(kwargs["labels"]) == {"team": "a"} and dict(kwargs["spec"]) == {"image": "busybox"}
    assert kwargs["body"] is body and kwargs["patch"] is watching.patch and kwargs["event"]["type"] == "MODIFIED"
    assert watching.sync_kwargs == watching.async_kwargs == kwargs


def test_a_body_replaced_with_a_newer_one_is_read_again():
    body = bodies.Body(RAW)  # kopf keeps one body per object for daemons and replaces what it holds
    assert cause(causes.IndexingCause, body).kwargs["name"] == "train-1"
    body._replace_with({**RAW, "metadata": {**RAW["metadata"], "name": "train-2"}})
    assert cause(causes.IndexingCause, body).kwargs["name"] == "train-2"


def test_a_kopf_whose_causes_moved_is_left_alone(monkeypatch, caplog):
    monkeypatch.setattr(kopf_dispatch, "causes", types.SimpleNamespace())  # a kopf without them
    assert kopf_dispatch.build_handler_kwargs_once() is False
    assert "as kopf builds them" in caplog.text
