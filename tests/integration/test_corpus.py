"""Bad input on the emulated tier (no schema, no CEL): the operator never crashes, and fails each one
with InvalidSpec naming the field; a hand-written garbage status is left alone; good work goes on."""

import asyncio

import pytest

from tests.harness import CORPUS, Cluster, wait_for

pytestmark = pytest.mark.usefixtures("operator")


async def test_every_bad_spec_fails_with_invalid_spec_naming_the_field(cluster: Cluster):
    await asyncio.gather(*(cluster.create_raw(f"bad-{case['name']}", case["spec"]) for case in CORPUS))
    for case in CORPUS:
        workload = await cluster.wait_state(f"bad-{case['name']}", "failed")
        assert workload["status"]["reason"] == "InvalidSpec", case["name"]
        assert case["field"] in workload["status"]["message"], (case["name"], workload["status"]["message"])
    # The operator is still at work: a good workload after all that runs to completion.
    await cluster.create_workload("good")
    await cluster.wait_pod("good-1")
    await cluster.pod_exited("good-1", 0)
    await cluster.wait_state("good", "completed")


async def test_a_status_written_by_hand_that_no_schema_refused_is_left_alone(cluster: Cluster, caplog):
    await cluster.create_workload("hand")
    await cluster.wait_state("hand", "preparing")
    await cluster.patch_status("hand", [{"op": "replace", "path": "/status/state", "value": "exploded"}])

    async def reported():
        return [r for r in caplog.records if "left alone: its status is unreadable" in r.getMessage()]

    (record,) = await wait_for(reported, "the operator to report the unreadable status")
    assert "status.state" in record.getMessage()
    await cluster.create_workload("after")  # and it goes on with the others
    await cluster.wait_state("after", "preparing")
    assert (await cluster.workload("hand"))["status"]["state"] == "exploded"


async def test_cancelling_a_finished_workload_changes_nothing(cluster: Cluster, status_writes):
    await cluster.create_workload("over")
    await cluster.wait_pod("over-1")
    await cluster.pod_exited("over-1", 0)
    await cluster.wait_state("over", "completed")
    writes = status_writes("over")
    await cluster.patch_spec("over", cancel=True)  # a real API server refuses this (the CRD's rule)
    await cluster.create_workload("marker")  # a later event the operator handles: it has seen the patch by then
    await cluster.wait_state("marker", "preparing")
    assert (await cluster.workload("over"))["status"]["state"] == "completed"
    assert status_writes("over") == writes
