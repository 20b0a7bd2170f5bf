"""Odd inputs on the emulated tier: the shared scenarios (the emulator refuses invalid pods with the API
server's words), plus a pod refused again and again (a quota) that must not hold the head of the queue."""

import kmock
import pytest

from tests.harness import Cluster, Operator, wait_for
from tests.inputs import *  # noqa: F403  (the shared scenarios run on this tier too)
from workload_operator.devcluster.emulator import status_body

pytestmark = pytest.mark.usefixtures("operator")


async def test_a_pod_refused_again_and_again_waits_behind_the_others(cluster: Cluster, operator: Operator, kube_api,
                                                                      monkeypatch):
    await operator.stop()
    monkeypatch.setenv("WORKLOAD_OPERATOR_MAX_ACTIVE", "1")
    await operator.start()
    quota = 'pods "blocked-1" is forbidden: exceeded quota: gpu-quota, requested: nvidia.com/gpu=8, limited: 4'

    def blocked_pod(request: kmock.Request) -> bool:
        return request.method.upper() == "POST" and request.url.path.endswith("/pods") and b'"blocked-1"' in request.body

    kube_api[blocked_pod] << 403 << status_body(403, quota, "Forbidden")  # every time: the quota never allows it
    await cluster.create_workload("blocked", priority=10)
    waiting = await cluster.wait_reason("blocked", "PodCreationFailed")
    assert (waiting["status"]["state"], waiting["status"]["attempts"]) == ("queued", 0)

    await cluster.create_workload("other")  # lower priority, but it can start: it takes the one slot
    await cluster.wait_pod("other-1")
    await cluster.wait_state("other", "preparing")
    await cluster.pod_exited("other-1", 0)
    await cluster.wait_state("other", "completed")

    async def retried() -> bool:  # tried again once a slot is free (after its backoff), never given up on
        return len([r for r in kube_api if blocked_pod(r)]) >= 2
    await wait_for(retried, "the refused pod to be tried again")
    assert (await cluster.workload("blocked"))["status"]["state"] == "queued"
