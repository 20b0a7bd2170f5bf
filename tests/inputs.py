"""Odd but real inputs both operator tiers run: each ends in a recorded state (terminal, or waiting with a reason
and an Event), and a queue limited to one active workload keeps moving past it.

The inputs are what a real cluster produces: the kubelet's own reasons (``OutOfnvidia.com/gpu``), Workload
names at the schema's limit, a pod the API server refuses as invalid, termination messages that are not
storable JSON, and a status edited by hand within the schema.
"""

from __future__ import annotations

import pytest

from tests.harness import Cluster, Operator, assert_valid_history
from workload_operator.lifecycle.gang import pod_name

pytestmark = pytest.mark.usefixtures("operator")

LONGEST_NAME = "a" * 253  # the longest Workload name the API server accepts (a DNS subdomain)
INVALID_POD = {"requests": {"gpu": 1}, "limits": {"gpu": 1}}  # the CRD takes it; the API server refuses the pod


async def warnings(cluster: Cluster, name: str, count: int) -> list[str]:
    return [e["reason"] for e in await cluster.wait_events(name, count) if e["type"] == "Warning"]


async def test_the_kubelets_own_reason_becomes_a_status_reason(cluster: Cluster):
    await cluster.create_workload("gpu")
    await cluster.wait_pod("gpu-1")
    await cluster.wait_state("gpu", "preparing")
    await cluster.set_pod_status("gpu-1", {
        "phase": "Failed", "reason": "OutOfnvidia.com/gpu",
        "message": "Pod was rejected: Node didn't have enough resource: nvidia.com/gpu, requested: 1, used: 8, capacity: 8"})
    workload = await cluster.wait_state("gpu", "failed")
    assert workload["status"]["reason"] == "OutOfResources"
    assert workload["status"]["message"].startswith("OutOfnvidia.com/gpu: Pod was rejected")  # the original kept
    assert assert_valid_history(workload)[-1] == ("preparing", "failed")
    assert "OutOfResources" in await warnings(cluster, "gpu", 3)


async def test_the_schedulers_words_say_why_a_pod_waits(cluster: Cluster, status_writes):
    await cluster.create_workload("big")
    await cluster.wait_pod("big-1")
    await cluster.wait_state("big", "preparing")
    creating = {"name": "main", "ready": False, "restartCount": 0, "image": "busybox", "imageID": "",
                "state": {"waiting": {"reason": "ContainerCreating"}}}
    await cluster.set_pod_status("big-1", {"containerStatuses": [creating]})  # routine: not written
    unschedulable = "0/12 nodes are available: 12 Insufficient nvidia.com/gpu."
    await cluster.set_pod_status("big-1", {"containerStatuses": None, "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}]})
    workload = await cluster.wait_reason("big", "Unschedulable")
    assert (workload["status"]["state"], workload["status"]["message"]) == ("preparing", unschedulable)
    assert status_writes("big") == 3  # queued, preparing, the scheduler's words; nothing for ContainerCreating
    assert "Unschedulable" in await warnings(cluster, "big", 3)


@pytest.mark.parametrize("kind", ["batch", "service"])
async def test_a_workload_named_at_the_limit_runs(cluster: Cluster, kind):
    service = {"type": "service", "port": 8080} if kind == "service" else {}
    await cluster.create_workload(LONGEST_NAME, **service)
    pod = pod_name(LONGEST_NAME, 1)
    assert len(pod) == 253 and pod != f"{LONGEST_NAME}-1"
    await cluster.wait_pod(pod)
    if kind == "service":
        await cluster.pod_ready(pod)
        workload = await cluster.wait_state(LONGEST_NAME, "serving")
        assert workload["status"]["endpoint"].startswith(f"wl-{workload['metadata']['uid'][:8]}.")
        await cluster.patch_spec(LONGEST_NAME, cancel=True)  # its pod, on no node, is deleted at once: stopped
    else:
        await cluster.pod_exited(pod, 0)
    workload = await cluster.wait_state(LONGEST_NAME, "completed")
    assert workload["status"]["run"]["pod"] == pod


async def test_a_pod_the_api_server_finds_invalid_fails_the_workload(cluster: Cluster, status_writes):
    await cluster.create_workload("invalid", resources=INVALID_POD)
    workload = await cluster.wait_state("invalid", "failed")
    status = workload["status"]
    assert status["reason"] == "InvalidSpec" and status["attempts"] == 0
    assert "must be a standard resource type or fully qualified" in status["message"]
    assert f"pod {cluster.namespace}/invalid-1 not created" in status["message"]
    assert assert_valid_history(workload) == [(None, "queued"), ("queued", "failed")]
    assert status_writes("invalid") == 2
    assert "InvalidSpec" in await warnings(cluster, "invalid", 2)


@pytest.mark.parametrize(("message", "why"), [("[" * 4096, "nested past any parser"),
                                               ("1" + "0" * 400, "an integer past int64"),
                                               ('{"loss": NaN}', "not JSON, though Python reads it")])
async def test_a_result_that_is_not_storable_json_is_kept_as_text(cluster: Cluster, message, why):
    await cluster.create_workload("odd")
    await cluster.wait_pod("odd-1")
    await cluster.pod_exited("odd-1", 0, message=message)
    workload = await cluster.wait_state("odd", "completed")
    assert workload["status"]["run"]["result"] == message, why


async def test_a_status_edited_by_hand_within_the_schema_does_not_stop_the_workload(cluster: Cluster,
                                                                                     operator: Operator):
    await cluster.create_workload("edited", preparingTimeoutSeconds=600)
    await cluster.wait_pod("edited-1")
    await cluster.wait_state("edited", "preparing")
    await operator.stop()  # edited while the operator is down: it starts from the edit, not from its own last write
    await cluster.patch_status("edited", [{"op": "replace", "path": "/status/history", "value": []}])
    await operator.start()
    await cluster.set_pod_status("edited-1", {"containerStatuses": [
        {"name": "main", "ready": False, "restartCount": 0, "image": "busybox", "imageID": "",
         "state": {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}}]})
    await cluster.wait_reason("edited", "ErrImagePull")  # decided from a preparing state with no history
    await cluster.pod_running("edited-1")
    await cluster.pod_exited("edited-1", 0)
    workload = await cluster.wait_state("edited", "completed")
    assert [entry["to"] for entry in workload["status"]["history"]] == ["running", "collecting", "completed"]


async def test_a_queue_of_one_keeps_moving_past_an_invalid_pod_and_a_long_name(
        cluster: Cluster, operator: Operator, monkeypatch):
    await operator.stop()
    monkeypatch.setenv("WORKLOAD_OPERATOR_MAX_ACTIVE", "1")
    await operator.start()
    await cluster.create_workload("invalid", priority=10, resources=INVALID_POD)
    assert (await cluster.wait_state("invalid", "failed"))["status"]["reason"] == "InvalidSpec"
    await cluster.create_workload(LONGEST_NAME, priority=5)
    await cluster.wait_pod(pod_name(LONGEST_NAME, 1))  # the one slot is free: the failed workload holds none
    await cluster.create_workload("after")
    await cluster.wait_reason("after", "WaitingForCapacity")
    await cluster.pod_exited(pod_name(LONGEST_NAME, 1), 0)
    await cluster.wait_state(LONGEST_NAME, "completed")
    await cluster.wait_pod("after-1")
    await cluster.pod_exited("after-1", 0)
    await cluster.wait_state("after", "completed")
