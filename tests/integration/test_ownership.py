"""Ownership on the emulated tier: the shared scenarios, plus the operator held back with a write in flight
while the Workload it decided for is deleted and re-created under the same name."""

from __future__ import annotations

import pytest

from tests.harness import Cluster, assert_valid_history, wait_for
from tests.ownership import *  # noqa: F403  (the shared ownership scenarios run on this tier too)

pytestmark = pytest.mark.usefixtures("operator")


async def test_a_status_write_for_the_old_incarnation_never_touches_the_new_one(cluster: Cluster, kube_api, audit):
    await cluster.create_workload("again")
    old_pod = await cluster.wait_pod("again-1")
    old_uid = (await cluster.wait_state("again", "preparing"))["metadata"]["uid"]
    held = kube_api.hold(method="PATCH", resource="workloads", subresource="status", name="again")
    await cluster.pod_running("again-1")  # the operator decides preparing → running for the old one ...
    await wait_for(lambda: _true(held.held), "the operator's status write to be in flight")
    await cluster.force_delete_workload("again")  # ... which is gone before that write lands
    new_uid = (await cluster.create_workload("again"))["metadata"]["uid"]
    await cluster.wait_reason("again", "NameConflict")  # the new one waits: again-1 is the old one's pod
    held.release()
    await wait_for(lambda: _true(held.answered), "the held write to be answered")

    await cluster.collect_garbage(old_pod)
    await cluster.wait_state("again", "preparing")
    await cluster.pod_running("again-1")
    await cluster.pod_exited("again-1", 0)
    workload = await cluster.wait_state("again", "completed")
    assert workload["metadata"]["uid"] == new_uid and workload["status"]["attempts"] == 1
    assert assert_valid_history(workload) == [
        (None, "queued"), ("queued", "preparing"), ("preparing", "running"), ("running", "collecting"),
        ("collecting", "completed")]
    # The old incarnation's decision was never recorded, on either object.
    assert [line["to"] for line in audit.lines if line["uid"] == old_uid] == ["queued", "preparing"]


async def test_the_ttl_of_the_old_incarnation_never_deletes_the_new_one(cluster: Cluster, kube_api):
    held = kube_api.hold(method="DELETE", resource="workloads", subresource=None, name="brief")
    await cluster.create_workload("brief", ttlSecondsAfterFinished=1)
    await cluster.wait_pod("brief-1")
    await cluster.pod_exited("brief-1", 0)
    await cluster.wait_state("brief", "completed")
    await wait_for(lambda: _true(held.held), "the TTL's delete to be in flight")
    await cluster.force_delete_workload("brief")
    renewed = await cluster.create_workload("brief")  # no TTL: kept
    held.release()
    await wait_for(lambda: _true(held.answered), "the held delete to be answered")
    await cluster.wait_state("brief", "preparing")  # the new one runs (kopf handles one event of a name at a time)

    workload = await cluster.workload("brief")
    assert workload["metadata"]["uid"] == renewed["metadata"]["uid"]
    assert not workload["metadata"].get("deletionTimestamp")  # the old one's delete missed it (uid precondition)


async def _true(value: object) -> bool:
    return bool(value)
