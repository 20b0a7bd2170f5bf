"""kopf's watch streams, as the operator runs them (kopf_transform.py, applied when the handlers are loaded): every
listed object and watch event reaches kopf without metadata.managedFields, and otherwise as the server sent it,
unless the operator said kopf need not see it."""

from __future__ import annotations

import copy
import types

from kopf._cogs.clients import watching

import workload_operator.handlers  # noqa: F401  (loading the handlers applies the fix)
from workload_operator import kopf_transform

MANAGED = [{"manager": "workload-operator", "operation": "Update", "fieldsV1": {"f:status": {}}}]
POD = {"metadata": {"name": "train-1-1", "uid": "p-1", "resourceVersion": "7", "managedFields": MANAGED},
       "status": {"phase": "Succeeded"}}


async def test_kopf_sees_every_object_without_its_managed_fields(monkeypatch):
    closed = []

    async def server_stream(*, settings, resource, namespace, operator_pause_waiter):  # as kopf's own: the listing
        # (type None), its end, then watch events
        try:
            yield {"type": None, "object": copy.deepcopy(POD)}
            yield watching.Bookmark.LISTED
            yield {"type": "MODIFIED", "object": copy.deepcopy(POD)}
            yield {"type": "ERROR", "object": {"kind": "Status", "code": 410}}
        finally:
            closed.append(True)

    monkeypatch.setattr(watching, "continuous_watch", server_stream)
    assert kopf_transform.drop_managed_fields_on_arrival() is True
    seen = [item async for item in watching.continuous_watch(settings=None, resource=None, namespace=None,
                                                             operator_pause_waiter=None)]

    expected = {k: v for k, v in POD["metadata"].items() if k != "managedFields"}
    assert [item if isinstance(item, watching.Bookmark) else (item["type"], item["object"].get("metadata"))
            for item in seen] == [(None, expected), watching.Bookmark.LISTED, ("MODIFIED", expected), ("ERROR", None)]
    assert seen[0]["object"]["status"] == {"phase": "Succeeded"} and closed == [True]


def test_the_operator_runs_with_kopfs_stream_wrapped_once():
    assert getattr(watching.continuous_watch, "drops_managed_fields", False)
    assert kopf_transform.drop_managed_fields_on_arrival() is True  # again: not wrapped twice
    assert not getattr(watching.continuous_watch.__wrapped__, "drops_managed_fields", False)


def test_a_kopf_whose_stream_moved_is_left_alone(monkeypatch, caplog):
    monkeypatch.setattr(kopf_transform, "watching", types.SimpleNamespace())  # a kopf without it
    assert kopf_transform.drop_managed_fields_on_arrival() is False
    assert "with their managedFields" in caplog.text


async def test_what_the_operator_says_kopf_need_not_see_never_reaches_it(monkeypatch):
    async def server_stream(*, settings, resource, namespace, operator_pause_waiter):
        yield {"type": None, "object": copy.deepcopy(POD)}
        yield watching.Bookmark.LISTED
        for version in ("8", "9"):
            yield {"type": "MODIFIED", "object": {**copy.deepcopy(POD), "metadata": {"resourceVersion": version}}}

    asked = []

    def skip(resource, item):
        asked.append(resource)
        return isinstance(item, dict) and (item["object"]["metadata"] or {}).get("resourceVersion") == "8"

    monkeypatch.setattr(watching, "continuous_watch", server_stream)
    monkeypatch.setattr(kopf_transform, "skip_on_arrival", skip)
    assert kopf_transform.drop_managed_fields_on_arrival() is True
    seen = [item async for item in watching.continuous_watch(settings=None, resource="workloads", namespace=None,
                                                             operator_pause_waiter=None)]

    assert [item if isinstance(item, watching.Bookmark) else item["object"]["metadata"].get("resourceVersion")
            for item in seen] == ["7", watching.Bookmark.LISTED, "9"]
    assert asked == ["workloads"] * 4  # asked of every item, with the resource of the stream


async def test_a_failure_to_decide_lets_the_event_through(monkeypatch, caplog):
    """The operator's question must never end kopf's watch: kopf sees what it could not be told to skip."""
    async def server_stream(*, settings, resource, namespace, operator_pause_waiter):
        yield {"type": None, "object": copy.deepcopy(POD)}

    def skip(resource, item):
        raise TypeError("a body nobody expected")

    monkeypatch.setattr(watching, "continuous_watch", server_stream)
    monkeypatch.setattr(kopf_transform, "skip_on_arrival", skip)
    assert kopf_transform.drop_managed_fields_on_arrival() is True
    seen = [item async for item in watching.continuous_watch(settings=None, resource="workloads", namespace=None,
                                                             operator_pause_waiter=None)]
    assert [item["object"]["metadata"]["resourceVersion"] for item in seen] == ["7"]
    assert "a body nobody expected" in caplog.text
