"""Events are posted in the background: recording a transition never waits for its Event, one workload's
Events keep their order, a failure to post is logged and not raised, and stopping posts what is queued."""

from __future__ import annotations

import asyncio
import datetime
import logging

import aiohttp.web
import kubernetes

from tests.harness import client_configuration, stand_in_api
from workload_operator.kube import Kube
from workload_operator.lifecycle.decide import WorkloadView


async def test_events_are_posted_in_the_background_in_order_and_flushed_on_close(tmp_path, caplog):
    release, received = asyncio.Event(), []

    async def events(request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.json()
        await release.wait()  # the API server is slow: nobody may wait for it
        received.append((body["involvedObject"]["name"], body["reason"]))
        if body["reason"] == "Refused":
            return aiohttp.web.json_response({"kind": "Status", "code": 500}, status=500)
        return aiohttp.web.json_response(body, status=201)

    app = aiohttp.web.Application()
    app.router.add_post("/api/v1/namespaces/{namespace}/events", events)
    async with stand_in_api(app, tmp_path) as kubeconfig:
        configuration = client_configuration(kubeconfig)
        kube = Kube(kubernetes.client.ApiClient(configuration))
        views = [WorkloadView.from_body({"metadata": {"name": f"w{i}", "namespace": "ml", "uid": f"u{i}"}})
                 for i in range(3)]
        now = datetime.datetime.now(datetime.UTC)
        for reason in ("Created", "PodCreated", "Refused", "Started"):
            for view in views:
                await asyncio.wait_for(kube.post_event(view, reason=reason, message="", warning=False, now=now), 1)
        assert received == []  # none of them waited for the server
        release.set()
        with caplog.at_level(logging.WARNING, logger="workload_operator.kube"):
            await kube.close()

    for view in views:  # every one posted, each workload's in order
        assert [reason for name, reason in received if name == view.name] == ["Created", "PodCreated", "Refused", "Started"]
    assert len([r for r in caplog.records if "could not post the event Refused" in r.getMessage()]) == 3
