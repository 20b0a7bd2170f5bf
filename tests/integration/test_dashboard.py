"""The dashboard's server against the emulated API: a snapshot, then changes, pushed; one watch per collection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.browser import page, playwright, row  # noqa: F401 (page: a fixture)
from tests.harness import DEADLINE
from workload_operator.dashboard.server import AGENT, serving
from workload_operator.kube import Kube


class Stream:
    """A page's server-sent events, read as they come."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = DEADLINE) -> tuple[str, Any]:
        async def read() -> tuple[str, Any]:
            name, data = "", ""
            while True:
                line = (await self.response.content.readline()).decode()
                if not line:
                    raise EOFError("the stream ended")
                if line.startswith("event: "):
                    name = line[7:].strip()
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "\n" and name:
                    return name, json.loads(data)
        return await asyncio.wait_for(read(), timeout)

    async def until(self, wanted: str, check, timeout: float = DEADLINE) -> Any:
        """The first message named ``wanted`` whose data passes ``check``."""
        async with asyncio.timeout(timeout):
            while True:
                name, data = await self.next()
                if name == wanted and check(data):
                    return data


@pytest.fixture()
async def dashboard(kubeconfig, cluster) -> AsyncIterator[tuple[Any, str]]:
    async with serving(Kube.from_environment(AGENT), port=0) as (board, url):
        yield board, url


@pytest.fixture()
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def open_stream(http: aiohttp.ClientSession, url: str) -> Stream:
    response = await http.get(url)
    assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"
    return Stream(response)


async def test_the_list_starts_from_a_snapshot_and_then_gets_each_change(cluster, dashboard, http):
    _, url = dashboard
    await cluster.create_workload("first")
    stream = await open_stream(http, url + "api/list")
    name, snapshot = await stream.next()
    assert name == "snapshot"
    assert [row["name"] for row in snapshot["workloads"]] == ["first"]
    assert snapshot["map"]["initial"] == "queued"

    await cluster.create_workload("second")
    await cluster.patch_status("first", [{"op": "add", "path": "/status", "value": {"state": "queued"}}])
    seen: dict[str, Any] = {}

    def both_arrived(data: dict[str, Any]) -> bool:
        seen.update({row["name"]: row for row in data["upsert"]})
        return "second" in seen and (seen.get("first") or {}).get("state") == "queued"

    await stream.until("changes", both_arrived)
    assert seen["first"]["queuePosition"] == 1

    await cluster.delete_workload("second")
    second = seen["second"]["uid"]
    await stream.until("changes", lambda data: second in data["remove"])


async def test_a_workload_page_follows_its_workload_and_its_pods(cluster, dashboard, http):
    _, url = dashboard
    stream = await open_stream(http, url + f"api/workloads/{cluster.namespace}/later")
    name, page = await stream.next()
    assert (name, page["found"]) == ("workload", False)

    await cluster.create_workload("later")
    await stream.until("workload", lambda data: data["found"])
    await cluster.patch_status("later", [{"op": "add", "path": "/status", "value": {
        "state": "queued", "history": [{"to": "queued", "at": "2026-12-06T10:00:00Z", "reason": "Created"}],
        "transitions": 1}}])
    page = await stream.until("workload", lambda data: data["workload"]["state"] == "queued")
    assert [band["state"] for band in page["timeline"]] == ["queued"]


async def test_the_dashboard_lists_once_and_then_only_watches(cluster, dashboard, http, kube_api):
    """No polling: whatever happens, one LIST and one long WATCH per collection (a watch resumes only when the
    server ends it, which the emulator does not do within a test)."""
    board, url = dashboard
    stream = await open_stream(http, url + "api/list")
    await stream.next()
    for n in range(5):
        await cluster.create_workload(f"w{n}")
    await stream.until("changes", lambda data: any(row["name"] == "w4" for row in data["upsert"]))
    ours = [request for request in kube_api.requests_since(0) if request.headers.get("User-Agent", "").startswith(AGENT)]
    calls = sorted((request.url.path, request.params.get("watch") == "true") for request in ours)
    assert calls == sorted([
        ("/apis/ml.lifecycle.dev/v1alpha1/workloads", False), ("/apis/ml.lifecycle.dev/v1alpha1/workloads", True),
        ("/api/v1/pods", False), ("/api/v1/pods", True), ("/api/v1/events", False), ("/api/v1/events", True),
    ])


async def test_it_answers_only_requests_to_localhost_and_says_what_the_page_may_load(dashboard, http):
    _, url = dashboard
    async with http.get(url + "healthz", headers={"Host": "rebound.example.com:8000"}) as response:
        assert response.status == 403
    async with http.get(url) as response:
        assert response.status == 200
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "<script" in await response.text()
    async with http.get(url + "healthz") as response:
        assert response.status == 200


async def test_a_state_written_by_hand_is_shown_as_written(cluster, dashboard, page):
    """The emulated API has no schema: a state no version of the operator knows can be stored there (a real
    server refuses it), and the page must show it rather than break."""
    _, url = dashboard
    await cluster.create_workload("odd")
    await cluster.patch_status("odd", [{"op": "add", "path": "/status", "value": {"state": "dreaming", "attempts": "?"}}])
    await page.goto(url)
    await playwright.expect(row(page, "odd")).to_have_attribute("data-state", "dreaming")
    await playwright.expect(page.locator("[data-testid=count][data-state=other]")).to_have_text("1")
    await page.goto(f"{url}#/workload/{cluster.namespace}/odd")
    await playwright.expect(page.locator("main")).to_contain_text("dreaming")
