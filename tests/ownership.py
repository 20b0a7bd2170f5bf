"""Ownership scenarios both operator tiers run: the operator acts only on a workload's own objects (a controller
owner reference to its uid, in its namespace) and only on the incarnation of the Workload it decided for.

Each one plants what someone else could (a Service or pod under a name the operator would use, decoy pods
carrying a workload's labels and uid, a Workload deleted and re-created under its name) and checks that the
foreign objects come out untouched while the workloads still run, cancel and delete to the end.
"""

from __future__ import annotations

import pytest

from tests.harness import Cluster, Operator, assert_valid_history

pytestmark = pytest.mark.usefixtures("operator")


def unchanged(before: dict, after: dict | None) -> bool:
    return after is not None and (after["metadata"]["uid"], after["metadata"]["resourceVersion"]) == (
        before["metadata"]["uid"], before["metadata"]["resourceVersion"])


def left_alone(cluster: Cluster, before: dict, after: dict | None) -> bool:
    """Unchanged by anyone; or, where a real garbage collector runs and the pod names an owner that does not exist
    in its namespace, collected by it, with no write of the operator's for it in the API server's audit log."""
    if after is None and cluster.garbage_collector:
        return not cluster.operator_wrote(before["metadata"]["namespace"], "pods", before["metadata"]["name"])
    return unchanged(before, after)


async def test_someone_elses_service_of_the_same_name_is_never_used_nor_deleted(cluster: Cluster):
    theirs = await cluster.create_foreign_service("payments")
    await cluster.create_workload("payments", type="service", port=8080)
    status = (await cluster.wait_reason("payments", "NameConflict"))["status"]
    assert (status["state"], status["attempts"]) == ("queued", 0)  # no attempt spent on it
    assert f"service {cluster.namespace}/payments already exists" in status["message"]
    assert await cluster.pod("payments-1") is None
    assert "NameConflict" in [e["reason"] for e in await cluster.wait_events("payments", 2) if e["type"] == "Warning"]

    await cluster.patch_spec("payments", cancel=True)
    assert assert_valid_history(await cluster.wait_state("payments", "cancelled"))[-1] == ("queued", "cancelled")
    await cluster.delete_workload("payments")
    await cluster.wait_gone("payments")
    assert unchanged(theirs, await cluster.service("payments"))


async def test_a_pod_name_taken_by_someone_else_waits_and_spends_no_attempt(cluster: Cluster):
    # Even with the operator's own labels (so that its watch sees it), a pod it does not own is not the workload's.
    theirs = await cluster.create_foreign_pod("clash-1", labels={"app.kubernetes.io/managed-by": "workload-operator"})
    await cluster.create_workload("clash")
    status = (await cluster.wait_reason("clash", "NameConflict"))["status"]
    assert (status["state"], status["attempts"]) == ("queued", 0)
    assert f"pod {cluster.namespace}/clash-1 already exists and is not this workload's" in status["message"]
    assert unchanged(theirs, await cluster.pod("clash-1"))

    await cluster._call(cluster.core.delete_namespaced_pod, "clash-1", cluster.namespace)  # its owner frees the name
    workload = await cluster.wait_state("clash", "preparing")  # retried after the backoff, with the same attempt
    pod = await cluster.wait_pod("clash-1")
    assert pod["metadata"]["ownerReferences"][0]["uid"] == workload["metadata"]["uid"]
    await cluster.pod_exited("clash-1", 0)
    workload = await cluster.wait_state("clash", "completed")
    assert workload["status"]["attempts"] == 1
    assert assert_valid_history(workload) == [
        (None, "queued"), ("queued", "preparing"), ("preparing", "running"), ("running", "collecting"),
        ("collecting", "completed")]


async def test_a_gang_is_made_whole_or_not_at_all_when_one_name_is_taken(cluster: Cluster):
    theirs = await cluster.create_foreign_pod("ring-1-2", labels={"app.kubernetes.io/managed-by": "workload-operator"})
    await cluster.create_workload("ring", replicas=4)
    status = (await cluster.wait_reason("ring", "NameConflict"))["status"]
    assert (status["state"], status["attempts"]) == ("queued", 0)
    for index in (0, 1, 3):  # made at once with index 2, then deleted: no pod of a gang that cannot start holds a node
        await cluster.wait_pod_gone(f"ring-1-{index}")
    assert unchanged(theirs, await cluster.pod("ring-1-2"))

    await cluster._call(cluster.core.delete_namespaced_pod, "ring-1-2", cluster.namespace)  # its owner frees the name
    await cluster.wait_state("ring", "preparing")
    for index in range(4):
        await cluster.pod_running(f"ring-1-{index}")
    await cluster.wait_state("ring", "running")
    for index in range(4):
        await cluster.pod_exited(f"ring-1-{index}", 0)
    workload = await cluster.wait_state("ring", "completed")
    assert (workload["status"]["attempts"], workload["status"]["podsReady"]) == (1, "0/4")


async def test_decoy_pods_are_left_alone_and_cancel_and_delete_complete(cluster: Cluster, operator: Operator):
    other = cluster.elsewhere(f"{cluster.namespace}-b")
    await other.create_namespace()
    await operator.stop()
    both = Operator(cluster.namespace, other.namespace)  # the operator serves both namespaces
    await both.start()
    try:
        uid = (await cluster.start_running("w"))["metadata"]["uid"]
        labels = {"app.kubernetes.io/managed-by": "workload-operator", "ml.lifecycle.dev/workload-uid": uid,
                  "ml.lifecycle.dev/attempt": "1", "ml.lifecycle.dev/workload": "w"}
        # In another namespace, with w's labels and even an owner reference to w: not w's, whatever it says.
        decoy = await other.create_foreign_pod("db-0", labels=labels, owner_uid=uid)
        # In w's namespace, a plain pod of the decoy's name: what an operator deleting by name would hit.
        bystander = await cluster.create_foreign_pod("db-0")
        # In w's namespace with w's labels but no owner reference: not w's either.
        lookalike = await cluster.create_foreign_pod("w-2", labels=labels)

        await cluster.patch_spec("w", cancel=True)
        workload = await cluster.wait_state("w", "cancelled")
        assert workload["status"]["attempts"] == 1
        assert await cluster.pod("w-1") is None  # its own pod was stopped
        await cluster.delete_workload("w")
        await cluster.wait_gone("w")  # the finalizer does not wait for pods that are not w's
        assert left_alone(cluster, decoy, await other.pod("db-0"))
        assert unchanged(bystander, await cluster.pod("db-0"))
        assert unchanged(lookalike, await cluster.pod("w-2"))
    finally:
        await both.stop()
        await other._call(other.core.delete_namespace, other.namespace)


async def test_a_workload_deleted_and_recreated_while_the_operator_is_down_runs_its_own_lifecycle(
        cluster: Cluster, operator: Operator):
    await cluster.create_workload("again")
    old_pod = await cluster.wait_pod("again-1")
    await cluster.wait_state("again", "preparing")
    await operator.stop()
    await cluster.force_delete_workload("again")  # gone while nobody could stop its pod
    new_uid = (await cluster.create_workload("again"))["metadata"]["uid"]
    await operator.start()

    if not cluster.garbage_collector:  # the old incarnation's pod holds the name: the new one waits for it
        status = (await cluster.wait_reason("again", "NameConflict"))["status"]
        assert (status["state"], status["attempts"]) == ("queued", 0)
        assert unchanged(old_pod, await cluster.pod("again-1"))
        await cluster.collect_garbage(old_pod)
    # (a real garbage collector deletes it by itself: its owner is gone; the operator never does)

    await cluster.wait_state("again", "preparing")
    assert (await cluster.wait_pod("again-1"))["metadata"]["ownerReferences"][0]["uid"] == new_uid
    await cluster.pod_running("again-1")
    await cluster.pod_exited("again-1", 0)
    workload = await cluster.wait_state("again", "completed")
    assert workload["metadata"]["uid"] == new_uid and workload["status"]["attempts"] == 1
    assert assert_valid_history(workload)[:2] == [(None, "queued"), ("queued", "preparing")]
