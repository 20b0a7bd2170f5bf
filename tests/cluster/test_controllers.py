"""The real controllers where a scenario needs them: the scheduler's own Unschedulable message and binding, the
node-lifecycle and taint-eviction controllers acting on a node that stops heartbeating, the garbage collector
and the namespace controller. The tests still play each node's kubelet (Node, Lease, pods/status)."""

from __future__ import annotations

import uuid

import pytest

from tests.harness import Cluster, Operator, assert_valid_history, wait_for
from workload_operator.devcluster.control_plane import CONTROLLERS, SCHEDULER_NAME

pytestmark = pytest.mark.usefixtures("operator")
SLOW = 60  # seconds: a node's grace period, then a toleration, then the next attempt


@pytest.fixture(autouse=True)
def real_controllers(control_plane_started):
    if control_plane_started is None or control_plane_started.binaries.controller_manager is None \
            or control_plane_started.binaries.scheduler is None:
        pytest.skip("needs the session's own control plane with kube-scheduler and kube-controller-manager")
    assert "node-lifecycle-controller" in CONTROLLERS


def gpus(count: int) -> dict:
    return {"requests": {"nvidia.com/gpu": count}, "limits": {"nvidia.com/gpu": count}}


def node_name() -> str:
    return f"gpu-node-{uuid.uuid4().hex[:6]}"  # Nodes are cluster-wide: one name per test


async def bound_node(cluster: Cluster, pod: str) -> str:
    async def bound():
        found = await cluster.pod(pod)
        return found and found["spec"].get("nodeName")
    return await wait_for(bound, f"{pod} to be bound by the scheduler")


async def test_the_schedulers_own_words_say_why_a_pod_waits_and_its_binding_starts_it(cluster: Cluster):
    template = {"spec": {"schedulerName": SCHEDULER_NAME}}
    async with cluster.node(node_name(), gpus=8) as _:
        await cluster.create_workload("too-big", resources=gpus(16), template=template)
        waiting = await cluster.wait_reason("too-big", "Unschedulable")
        assert waiting["status"]["state"] == "preparing"
        assert "Insufficient nvidia.com/gpu" in waiting["status"]["message"], waiting["status"]["message"]

        await cluster.create_workload("fits", resources=gpus(8), template=template)
        node = await bound_node(cluster, "fits-1")
        assert node.startswith("gpu-node-")
        await cluster.pod_running("fits-1")
        await cluster.pod_exited("fits-1", 0)
        await cluster.wait_state("fits", "completed")
        await cluster.patch_spec("too-big", cancel=True)
        await cluster.wait_state("too-big", "cancelled")


async def test_a_node_that_stops_heartbeating_loses_its_pod_and_the_workload_runs_again_elsewhere(
        cluster: Cluster, audit):
    # The pod tolerates an unreachable node for 1 s (the API server's default toleration is 300 s), and has 2 s to
    # stop: the operator waits that long, plus its --force-delete-after, for the deletion no kubelet will confirm,
    # before the next attempt may take the GPUs.
    template = {"spec": {"schedulerName": SCHEDULER_NAME, "terminationGracePeriodSeconds": 2, "tolerations": [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]}}
    first, second = node_name(), node_name()
    async with cluster.node(first) as lost:
        await cluster.create_workload("train", resources=gpus(8), template=template, maxAttempts=2)
        assert await bound_node(cluster, "train-1") == first
        await cluster.pod_running("train-1")
        await cluster.wait_state("train", "running")
        # A second, healthy node: with every node of a zone lost at once, the node controller evicts nothing.
        async with cluster.node(second):
            lost.set()  # the first node's kubelet stops reporting
            lines = await audit.wait_transitions("train", 6, timeout=SLOW)  # … running orphaned queued preparing
            assert lines[3:] == [("running", "orphaned"), ("orphaned", "queued"), ("queued", "preparing")]
            assert await bound_node(cluster, "train-2") == second
            await cluster.pod_running("train-2")
            await cluster.pod_exited("train-2", 0)
            workload = await cluster.wait_state("train", "completed", timeout=SLOW)
    orphaned = next(entry for entry in workload["status"]["history"] if entry["to"] == "orphaned")
    assert orphaned["reason"] == "DeletionByTaintManager", orphaned
    assert workload["status"]["attempts"] == 2
    assert_valid_history(workload)


async def test_the_garbage_collector_removes_the_pod_of_a_workload_that_vanished_while_the_operator_was_down(
        cluster: Cluster, operator: Operator):
    await cluster.create_workload("gone")
    pod = await cluster.wait_pod("gone-1")
    await cluster.wait_state("gone", "preparing")
    await operator.stop()
    await cluster.force_delete_workload("gone")  # its finalizer stripped: the operator never sees the delete
    await cluster.wait_pod_gone("gone-1", timeout=SLOW)  # the pod's owner is gone: the collector deletes it
    await operator.start()
    assert await cluster.pod("gone-1") is None, pod["metadata"]["uid"]


async def test_deleting_the_namespace_cancels_its_workloads_and_removes_it(cluster: Cluster, audit):
    await cluster.start_running("train")
    await cluster._call(cluster.core.delete_namespace, cluster.namespace)

    async def namespace_gone():
        try:
            await cluster._call(cluster.core.read_namespace, cluster.namespace)
        except Exception as exc:  # noqa: BLE001 (a 404 is the answer wanted)
            return getattr(exc, "status", None) == 404
        return False

    await wait_for(namespace_gone, f"namespace {cluster.namespace} to be removed", timeout=SLOW)
    # The namespace controller deletes the pods and the Workloads in no set order: a pod that goes first is a
    # lost worker (running -> orphaned -> queued) before the Workload's own deletion cancels it.
    lines = audit.transitions("train")
    assert lines[-1][1] == "cancelled" and lines[-1][0] in ("running", "queued"), lines
    assert lines[:3] == [(None, "queued"), ("queued", "preparing"), ("preparing", "running")], lines
