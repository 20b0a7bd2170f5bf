"""kube.list_and_watch, the dashboard's reflector, against a scripted API (no I/O)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes.client.exceptions import ApiException

from workload_operator import kube


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}}


class ScriptedApi:
    """Answers LISTs and WATCHes from scripts; records what was asked."""

    def __init__(self, lists: list[Any], watches: list[Any]) -> None:
        self.lists, self.watches, self.asked = lists, watches, []

    async def request(self, method: str, path: str, **query: Any) -> bytes:
        self.asked.append(("list", query.get("continue_")))
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return json.dumps(answer).encode()

    async def lines(self, path: str, **query: Any):
        self.asked.append(("watch", query["resource_version"]))
        if not self.watches:
            await asyncio.Event().wait()  # the last watch stays open
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        for event in script:
            yield json.dumps(event).encode()


async def take(api: ScriptedApi, count: int) -> list[tuple[str, Any]]:
    seen = []
    async for kind, data in kube.list_and_watch(api, "/api/v1/pods"):
        seen.append((kind, [item["metadata"]["name"] for item in data] if kind == "LISTED" else data["metadata"]["name"]))
        if len(seen) == count:
            return seen
    raise AssertionError("the stream ended")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    sleep = asyncio.sleep
    monkeypatch.setattr(kube.asyncio, "sleep", lambda seconds: sleep(0))


async def test_lists_in_pages_then_watches_from_the_lists_version():
    api = ScriptedApi(
        lists=[{"items": [obj("a", "1")], "metadata": {"continue": "token"}},
               {"items": [obj("b", "2")], "metadata": {"resourceVersion": "5"}}],
        watches=[[{"type": "ADDED", "object": obj("c", "6")}]])
    assert await take(api, 2) == [("LISTED", ["a", "b"]), ("ADDED", "c")]
    assert api.asked == [("list", None), ("list", "token"), ("watch", "5")]


async def test_resumes_from_the_last_version_seen_bookmarks_included_without_listing_again():
    api = ScriptedApi(
        lists=[{"items": [], "metadata": {"resourceVersion": "5"}}],
        watches=[[{"type": "MODIFIED", "object": obj("a", "7")}, {"type": "BOOKMARK", "object": obj("", "9")}],
                 aiohttp.ClientConnectionError("reset"),
                 [{"type": "DELETED", "object": obj("a", "10")}]])
    assert await take(api, 3) == [("LISTED", []), ("MODIFIED", "a"), ("DELETED", "a")]
    assert api.asked == [("list", None), ("watch", "5"), ("watch", "9"), ("watch", "9")]


@pytest.mark.parametrize("expiry", [
    [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}],
    ApiException(status=410, reason="Gone"),
])
async def test_lists_again_when_the_version_has_expired(expiry):
    api = ScriptedApi(
        lists=[{"items": [obj("a", "1")], "metadata": {"resourceVersion": "5"}},
               {"items": [obj("b", "20")], "metadata": {"resourceVersion": "21"}}],
        watches=[expiry])
    assert await take(api, 2) == [("LISTED", ["a"]), ("LISTED", ["b"])]
    assert api.asked[-2:] == [("watch", "5"), ("list", None)]


async def test_a_refusal_is_raised_not_retried():
    api = ScriptedApi(lists=[ApiException(status=403, reason="Forbidden")], watches=[])
    with pytest.raises(ApiException) as refused:
        await take(api, 1)
    assert refused.value.status == 403


async def test_an_overloaded_server_is_asked_again():
    api = ScriptedApi(lists=[ApiException(status=429, reason="TooManyRequests"),
                             {"items": [obj("a", "1")], "metadata": {"resourceVersion": "1"}}], watches=[])
    assert await take(api, 1) == [("LISTED", ["a"])]
