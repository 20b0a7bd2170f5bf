"""The scenarios every tier runs: imported by tests/integration (kmock) and tests/cluster (a real API server).

Each tier provides the fixtures ``cluster`` (a harness.Cluster on a fresh namespace), ``operator``
(running), ``audit`` (an AuditRecorder) and ``status_writes`` (name -> how many status writes the
operator sent). Every scenario checks the history is a valid path and counts the status writes:
exactly one per transition.
"""

from __future__ import annotations

import pytest

from tests.harness import Cluster, Operator, assert_valid_history

pytestmark = pytest.mark.usefixtures("operator")


async def test_happy_path(cluster: Cluster, status_writes):
    await cluster.create_workload("train", command=["python", "train.py"], resources={"limits": {"nvidia.com/gpu": 1}})
    await cluster.wait_state("train", "preparing")
    pod = await cluster.wait_pod("train-1")
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Workload"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "workload-operator"
    (main,) = pod["spec"]["containers"]
    assert main["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "1"}

    await cluster.pod_running("train-1")
    await cluster.wait_state("train", "running")
    await cluster.pod_exited("train-1", 0, message='{"accuracy": 0.93}')
    workload = await cluster.wait_state("train", "completed")

    assert assert_valid_history(workload) == [
        (None, "queued"), ("queued", "preparing"), ("preparing", "running"),
        ("running", "collecting"), ("collecting", "completed"),
    ]
    status = workload["status"]
    assert status["attempts"] == 1
    assert status["run"] == {"pod": "train-1", "exitCode": 0, "startedAt": "2026-11-23T12:00:00Z",
                             "finishedAt": "2026-11-23T12:05:00Z", "result": {"accuracy": 0.93}}
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Active": "False", "Ready": "False", "Finished": "True", "Succeeded": "True"}
    assert status_writes("train") == 5
    events = await cluster.wait_events("train", 5)
    assert sorted(e["reason"] for e in events) == sorted(["Created", "PodCreated", "Started", "Succeeded", "Completed"])


async def test_pending_to_succeeded_jump_records_each_edge_once(cluster: Cluster, status_writes):
    await cluster.create_workload("jump")
    await cluster.wait_pod("jump-1")
    await cluster.wait_state("jump", "preparing")
    await cluster.pod_exited("jump-1", 0, message="done")
    workload = await cluster.wait_state("jump", "completed")
    assert assert_valid_history(workload)[2:] == [
        ("preparing", "running"), ("running", "collecting"), ("collecting", "completed"),
    ]
    assert workload["status"]["run"]["result"] == "done"
    assert status_writes("jump") == 5


@pytest.mark.parametrize(("exit_code", "reason", "expected_reason"), [(3, "Error", "ExitCode"), (137, "OOMKilled", "OOMKilled")])
async def test_a_failed_run(cluster: Cluster, status_writes, exit_code, reason, expected_reason):
    await cluster.start_running("bad")
    await cluster.pod_exited("bad-1", exit_code, reason=reason, message="ValueError: lr must be positive")
    workload = await cluster.wait_state("bad", "failed")
    status = workload["status"]
    assert status["reason"] == expected_reason
    assert f"code {exit_code}" in status["message"] and "lr must be positive" in status["message"]
    assert status["run"]["exitCode"] == exit_code
    assert {c["type"]: c["status"] for c in status["conditions"]}["Succeeded"] == "False"
    assert assert_valid_history(workload)[-1] == ("running", "failed")
    assert status_writes("bad") == 4
    warnings = [e for e in await cluster.wait_events("bad", 4) if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == [expected_reason]


async def test_spec_cancel_stops_the_pod_and_keeps_the_workload(cluster: Cluster, status_writes):
    await cluster.start_running("stopme")
    await cluster.patch_spec("stopme", cancel=True)
    workload = await cluster.wait_state("stopme", "cancelled")
    assert await cluster.pod("stopme-1") is None
    assert workload["status"]["reason"] == "Cancelled"
    assert assert_valid_history(workload)[-1] == ("running", "cancelled")
    assert status_writes("stopme") == 4


async def test_delete_while_running_deletes_the_pod_records_cancelled_and_releases(cluster: Cluster, status_writes, audit):
    await cluster.start_running("doomed")
    await cluster.delete_workload("doomed")
    await cluster.wait_gone("doomed")
    assert await cluster.pod("doomed-1") is None
    assert audit.transitions("doomed")[-1] == ("running", "cancelled")
    assert status_writes("doomed") == 4
    assert "Deleted" in [e["reason"] for e in await cluster.wait_events("doomed", 4)]


async def test_delete_when_completed_releases_at_once(cluster: Cluster, status_writes):
    await cluster.create_workload("done")
    await cluster.wait_pod("done-1")
    await cluster.pod_exited("done-1", 0)
    await cluster.wait_state("done", "completed")
    await cluster.delete_workload("done")
    await cluster.wait_gone("done")
    assert status_writes("done") == 5  # nothing written on the way out


async def test_a_pod_that_vanishes_while_preparing_is_recreated(cluster: Cluster, status_writes):
    await cluster.create_workload("flaky")
    await cluster.wait_pod("flaky-1")
    await cluster.wait_state("flaky", "preparing")
    await cluster._call(cluster.core.delete_namespaced_pod, "flaky-1", cluster.namespace)
    await cluster.wait_pod("flaky-2")
    workload = await cluster.workload("flaky")
    assert workload["status"]["state"] == "preparing"
    assert workload["status"]["attempts"] == 2
    assert workload["status"]["reason"] == "PodRecreated"
    assert status_writes("flaky") == 3


async def test_restart_applies_what_was_missed_once(cluster: Cluster, status_writes, operator: Operator, audit):
    await cluster.start_running("resume")
    await operator.stop()
    await cluster.pod_exited("resume-1", 0, message="7")
    await operator.start()
    workload = await cluster.wait_state("resume", "completed")
    assert assert_valid_history(workload) == [
        (None, "queued"), ("queued", "preparing"), ("preparing", "running"),
        ("running", "collecting"), ("collecting", "completed"),
    ]
    assert workload["status"]["run"]["result"] == 7
    assert status_writes("resume") == 5
    assert audit.transitions("resume") == assert_valid_history(workload)  # each logged once, across both runs


async def test_a_delete_while_the_operator_is_down_completes_when_it_returns(cluster: Cluster, status_writes,
                                                                           operator: Operator, audit):
    await cluster.start_running("orphan")
    await operator.stop()
    await cluster.delete_workload("orphan")
    held = await cluster.workload("orphan")
    assert held is not None and held["metadata"]["deletionTimestamp"], "the finalizer holds it while nobody cleans up"
    await operator.start()
    await cluster.wait_gone("orphan")
    assert await cluster.pod("orphan-1") is None
    assert audit.transitions("orphan")[-1] == ("running", "cancelled")
    assert status_writes("orphan") == 4
