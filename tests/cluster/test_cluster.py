"""The cluster tier: the shared scenarios, and the API server's own refusals (the CRD's schema and CEL rules)."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import Cluster
from tests.scenarios import *  # noqa: F403  (the shared scenarios run on this tier too)
from workload_operator.lifecycle import InvalidTransition

pytestmark = pytest.mark.usefixtures("operator")


async def refusal(call) -> tuple[int, str]:
    """The status code and the message of the API server's refusal (decoded: the server escapes '>' as \\u003e)."""
    with pytest.raises(ApiException) as refused:
        await call
    return refused.value.status, json.loads(refused.value.body)["message"]


async def test_the_api_server_refuses_an_invalid_transition(cluster: Cluster):
    await cluster.create_workload("direct")
    await cluster.wait_state("direct", "preparing")
    code, message = await refusal(cluster.patch_status("direct", [{"op": "replace", "path": "/status/state", "value": "completed"}]))
    assert code == 422
    assert str(InvalidTransition("preparing", "completed")) in message


async def test_the_api_server_refuses_a_first_state_other_than_queued(cluster: Cluster, operator):
    await operator.stop()  # nobody else writes the first status
    await cluster.create_workload("first")
    code, message = await refusal(cluster.patch_status("first", [{"op": "add", "path": "/status", "value": {"state": "running"}}]))
    assert code == 422
    assert str(InvalidTransition(None, "running")) in message
    await operator.start()


async def test_the_api_server_refuses_cancelling_a_finished_workload(cluster: Cluster):
    await cluster.create_workload("finished")
    await cluster.wait_pod("finished-1")
    await cluster.pod_exited("finished-1", 0)
    await cluster.wait_state("finished", "completed")
    code, message = await refusal(cluster.patch_spec("finished", cancel=True))
    assert code == 422
    assert "cannot cancel a Workload that has already finished: it is completed" in message


@pytest.mark.parametrize(("spec", "field"), [
    ({"maxAttempts": 0}, "spec.maxAttempts"),
    ({"type": "service"}, "port is required for type: service"),
    ({"image": ""}, "spec.image"),
])
async def test_the_api_server_refuses_a_bad_spec(cluster: Cluster, spec, field):
    code, message = await refusal(cluster.create_workload("bad-spec", **spec))
    assert code == 422
    assert field in message


async def test_the_api_server_refuses_resizing_a_gang(cluster: Cluster):
    await cluster.create_workload("gang", replicas=2)
    code, message = await refusal(cluster.patch_spec("gang", replicas=3))
    assert code == 422
    assert "spec.replicas cannot be changed" in message
    code, message = await refusal(cluster.create_workload("too-big", replicas=257))
    assert code == 422 and "spec.replicas" in message
