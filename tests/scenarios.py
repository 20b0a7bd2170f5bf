"""The scenarios every tier runs: imported by tests/integration (kmock) and tests/cluster (a real API server).

Each tier provides the fixtures ``cluster`` (a harness.Cluster on a fresh namespace), ``operator``
(running), ``audit`` (an AuditRecorder) and ``status_writes`` (name -> how many status writes the
operator sent). Every scenario checks the history is a valid path and counts the status writes:
exactly one per transition.
"""

from __future__ import annotations

import datetime
import math

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import (
    DEADLINE, Cluster, Operator, assert_valid_history, parse_time, pass_time_until, wait_for,
)
from workload_operator.manifests import RETIRED_LABEL

pytestmark = pytest.mark.usefixtures("operator")


async def retired_pod(cluster: Cluster, name: str) -> dict | None:
    """The pod, once the operator has retired it (kept for its logs, out of its watch)."""
    pod = await cluster.pod(name)
    return pod if pod is not None and (pod["metadata"].get("labels") or {}).get(RETIRED_LABEL) == "true" else None


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
    # Its result recorded, the pod stays for its logs, retired from the operator's watch; the workload is unchanged.
    pod = await wait_for(lambda: retired_pod(cluster, "train-1"), "train-1 retired")
    assert pod["status"]["phase"] == "Succeeded"
    assert (await cluster.workload("train"))["status"] == workload["status"]


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
    await wait_for(lambda: retired_pod(cluster, "done-1"), "done-1 retired")
    await cluster.delete_workload("done")
    await cluster.wait_gone("done")
    await cluster.wait_pod_gone("done-1")  # out of the watch, yet read by its name and deleted
    assert status_writes("done") == 5  # nothing written on the way out


async def test_a_pod_that_vanishes_while_preparing_is_recreated(cluster: Cluster, status_writes):
    await cluster.create_workload("flaky")
    await cluster.wait_pod("flaky-1")
    await cluster.wait_state("flaky", "preparing")
    await cluster._call(cluster.core.delete_namespaced_pod, "flaky-1", cluster.namespace)
    await cluster.wait_pod("flaky-2")

    async def recorded():  # the pod is created first, then the status that counts it is written
        workload = await cluster.workload("flaky")
        return workload if workload["status"]["attempts"] == 2 else None

    workload = await wait_for(recorded, "the second attempt in status")
    assert workload["status"]["state"] == "preparing"
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
    assert await audit.wait_transitions("resume", 5) == assert_valid_history(workload)  # each logged once, across both runs


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


# --- services --------------------------------------------------------------------------------

SERVICE = {"type": "service", "port": 8888, "readinessPath": "/api"}


async def test_a_service_serves_flaps_and_stops(cluster: Cluster, status_writes, audit):
    await cluster.create_workload("jupyter", **SERVICE)
    await cluster.wait_pod("jupyter-1")
    service = await cluster._call(cluster.core.read_namespaced_service, "jupyter", cluster.namespace)
    assert service["spec"]["ports"][0]["port"] == 8888
    pod = await cluster.pod("jupyter-1")
    assert set(service["spec"]["selector"].items()) <= set(pod["metadata"]["labels"].items())
    probe = pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]  # a real server adds probe defaults
    assert (probe["path"], probe["port"]) == ("/api", 8888)

    await cluster.pod_running("jupyter-1")
    await cluster.wait_state("jupyter", "running")
    await cluster.pod_ready("jupyter-1")
    workload = await cluster.wait_state("jupyter", "serving")
    assert workload["status"]["endpoint"] == f"jupyter.{cluster.namespace}.svc:8888"

    async def ready_is(value: str):
        workload = await cluster.workload("jupyter")
        conditions = {c["type"]: c for c in workload["status"]["conditions"]}
        return workload if conditions["Ready"]["status"] == value else None

    await cluster.pod_ready("jupyter-1", ready=False)
    flapped = await wait_for(lambda: ready_is("False"), "Ready=False while serving")
    assert flapped["status"]["state"] == "serving" and flapped["status"]["reason"] == "NotReady"
    await cluster.pod_ready("jupyter-1", ready=True)
    await wait_for(lambda: ready_is("True"), "Ready=True again")

    await cluster.patch_spec("jupyter", cancel=True)
    workload = await cluster.wait_state("jupyter", "completed")
    assert assert_valid_history(workload)[-2:] == [("serving", "stopping"), ("stopping", "completed")]
    assert await cluster.pod("jupyter-1") is None
    assert status_writes("jupyter") == 8  # 6 transitions and 2 readiness flips
    await cluster.delete_workload("jupyter")
    await cluster.wait_gone("jupyter")
    with pytest.raises(ApiException) as gone:
        await cluster._call(cluster.core.read_namespaced_service, "jupyter", cluster.namespace)
    assert gone.value.status == 404


async def test_a_server_that_crashes_while_serving_fails(cluster: Cluster):
    await cluster.create_workload("vllm", **SERVICE)
    await cluster.wait_pod("vllm-1")
    await cluster.pod_ready("vllm-1")
    await cluster.wait_state("vllm", "serving")
    await cluster.pod_exited("vllm-1", 1, message="CUDA out of memory")
    workload = await cluster.wait_state("vllm", "failed")
    assert workload["status"]["reason"] == "ExitCode"
    assert assert_valid_history(workload)[-1] == ("serving", "failed")


# --- lost workers ----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["deleted", "evicted", "disrupted", "node-lost"])
async def test_a_lost_worker_is_requeued_and_retried(cluster: Cluster, status_writes, how):
    await cluster.start_running("lost")
    await cluster.pod_lost("lost-1", how)
    await cluster.wait_pod("lost-2")
    workload = await cluster.wait_state("lost", "preparing")
    assert workload["status"]["attempts"] == 2
    edges = assert_valid_history(workload)
    assert edges[3:] == [("running", "orphaned"), ("orphaned", "queued"), ("queued", "preparing")]
    assert workload["status"]["history"][3]["reason"] == {
        "deleted": "PodDeleted", "evicted": "Evicted", "disrupted": "PreemptionByScheduler", "node-lost": "NodeLost"}[how]
    assert await cluster.pod("lost-1") is None  # the lost pod is cleaned up
    assert status_writes("lost") == 6


async def test_the_retry_limit_fails_a_workload_that_keeps_losing_workers(cluster: Cluster):
    await cluster.start_running("unlucky", maxAttempts=2)
    await cluster.pod_lost("unlucky-1", "evicted")
    await cluster.wait_pod("unlucky-2")
    await cluster.pod_running("unlucky-2")
    await cluster.wait_state("unlucky", "running")
    await cluster.pod_lost("unlucky-2", "evicted")
    workload = await cluster.wait_state("unlucky", "failed")
    assert workload["status"]["reason"] == "RetryLimitExceeded"
    assert assert_valid_history(workload)[-1] == ("running", "failed")


def seconds_since(stamp: str) -> float:
    return (datetime.datetime.now(datetime.UTC) - parse_time(stamp)).total_seconds()


def backoff(monkeypatch, seconds: int) -> None:
    """The operator's backoff after a lost worker, from its next start (the cap too: the tests' is 1 s)."""
    monkeypatch.setenv("WORKLOAD_OPERATOR_BACKOFF_SECONDS", str(seconds))
    monkeypatch.setenv("WORKLOAD_OPERATOR_BACKOFF_CAP_SECONDS", str(seconds))


async def test_the_backoff_survives_a_restart(cluster: Cluster, operator: Operator, monkeypatch):
    await operator.stop()
    backoff(monkeypatch, 600)  # it waits in queued until the restart, however slow the machine
    await operator.start()
    await cluster.start_running("steady")
    await cluster.pod_lost("steady-1", "deleted")
    queued = await cluster.wait_state("steady", "queued")
    requeued_at = queued["status"]["history"][-1]["at"]
    assert queued["status"]["history"][-1]["from"] == "orphaned"
    await operator.stop()  # its timer for the next attempt dies with it
    # Set while nobody runs: a backoff that ends 3 s from now, after the operator is back. The next attempt's time
    # comes from status (requeued_at + the backoff), not from a timer that died, nor from the restart.
    seconds = math.ceil(seconds_since(requeued_at)) + 3
    backoff(monkeypatch, seconds)
    await operator.start()
    await cluster.wait_pod("steady-2")
    workload = await cluster.wait_state("steady", "preparing")
    delay = (parse_time(workload["status"]["history"][-1]["at"]) - parse_time(requeued_at)).total_seconds()
    assert delay >= seconds, f"re-admitted {delay}s after the loss: the {seconds}s backoff was not respected"


# --- queueing --------------------------------------------------------------------------------

async def test_the_queue_admits_by_priority_then_age_up_to_the_limit(cluster: Cluster, operator: Operator, monkeypatch):
    await operator.stop()
    monkeypatch.setenv("WORKLOAD_OPERATOR_MAX_ACTIVE_PER_NAMESPACE", "1")
    await operator.start()
    await cluster.start_running("first")
    await cluster.create_workload("low", priority=0)
    await cluster.create_workload("high", priority=10)
    await cluster.create_workload("low-later", priority=0)

    async def says(name: str, text: str):
        workload = await cluster.workload(name)
        return workload if text in ((workload.get("status") or {}).get("message") or "") else None

    await wait_for(lambda: says("high", "position 1 of 3"), "high to be first in the queue")
    low = await wait_for(lambda: says("low", "position 2 of 3"), "low to be second")
    assert low["status"]["reason"] == "WaitingForCapacity" and "1 of 1 workloads active" in low["status"]["message"]
    await wait_for(lambda: says("low-later", "position 3 of 3"), "low-later to be third")

    await cluster.pod_exited("first-1", 0)
    await cluster.wait_state("first", "completed")
    await cluster.wait_pod("high-1")
    assert (await cluster.workload("low"))["status"]["state"] == "queued"
    await cluster.pod_exited("high-1", 0)
    await cluster.wait_pod("low-1")
    assert (await cluster.workload("low-later"))["status"]["state"] == "queued"


# --- deadlines, TTL, nothing stuck -------------------------------------------------------------

async def test_the_active_deadline_fails_and_kills(cluster: Cluster):
    await cluster.create_workload("slow", activeDeadlineSeconds=1)
    await cluster.wait_pod("slow-1")
    await cluster.pod_running("slow-1")  # not waiting for "running": the deadline may pass it first
    workload = await cluster.wait_state("slow", "failed")
    assert assert_valid_history(workload)[-2:] == [("preparing", "running"), ("running", "failed")]
    assert workload["status"]["reason"] == "DeadlineExceeded"
    await cluster.wait_pod_gone("slow-1")


async def test_pods_stuck_terminating_on_a_lost_node_do_not_stop_the_workloads_from_ending(cluster: Cluster):
    # Both pods sit on a node whose kubelet never confirms a deletion: graceful deletes never finish by themselves.
    short_grace = {"spec": {"terminationGracePeriodSeconds": 2}}
    await cluster.create_workload("web", type="service", port=8080, template=short_grace)
    await cluster.create_workload("train", template=short_grace)
    for pod in ("web-1", "train-1"):
        await cluster.wait_pod(pod)
        await cluster.bind_pod(pod)
    await cluster.pod_ready("web-1")
    await cluster.pod_running("train-1")
    await cluster.wait_state("web", "serving")
    await cluster.wait_state("train", "running")
    since = await cluster.pods_version()
    await cluster.patch_spec("web", cancel=True)
    await cluster.patch_spec("train", cancel=True)
    grace = 2 + 1  # the pods' grace period, then the tests' --force-delete-after

    web = await cluster.wait_state("web", "failed", timeout=DEADLINE + grace)
    assert web["status"]["reason"] == "TerminationTimeout" and "deleted with grace 0" in web["status"]["message"]
    assert assert_valid_history(web)[-2:] == [("serving", "stopping"), ("stopping", "failed")]
    train = await cluster.wait_state("train", "cancelled", timeout=DEADLINE + grace)
    assert assert_valid_history(train)[-1] == ("running", "cancelled")
    for pod in ("web-1", "train-1"):
        await cluster.wait_pod_gone(pod)  # deleted with grace 0: the API server did not wait for the kubelet

    # Before that, each was deleted gracefully and stayed, terminating: nothing confirms it. Read from the pods'
    # changes since the cancels (replayed by the API server), not polled: that lasted only the grace period.
    def both_gone(changes) -> bool:
        return {c["object"]["metadata"]["name"] for c in changes if c["type"] == "DELETED"} >= {"web-1", "train-1"}
    changes = await cluster.pod_changes(since, both_gone)
    for pod in ("web-1", "train-1"):
        versions = [(c["type"], c["object"]["metadata"]) for c in changes if c["object"]["metadata"]["name"] == pod]
        assert versions[-1][0] == "DELETED", (pod, versions)
        # (a pod deleted at once shows a deletionTimestamp too, just before it goes: with a grace period of 0)
        assert any(kind == "MODIFIED" and meta.get("deletionGracePeriodSeconds") for kind, meta in versions[:-1]), \
            f"{pod} was never there terminating: {[(kind, meta.get('deletionGracePeriodSeconds')) for kind, meta in versions]}"


async def test_the_ttl_deletes_a_finished_workload(cluster: Cluster, audit):
    await cluster.create_workload("brief", ttlSecondsAfterFinished=1)
    await cluster.wait_pod("brief-1")
    await cluster.pod_exited("brief-1", 0)
    await cluster.wait_gone("brief")  # completed, then deleted by its TTL (times have whole seconds: maybe at once)
    assert audit.transitions("brief")[-1] == ("collecting", "completed")
    assert await cluster.pod("brief-1") is None


async def test_a_pod_stuck_preparing_says_why_and_times_out(cluster: Cluster):
    await cluster.create_workload("stuck", image="registry.invalid/nope:1")  # no timeout yet: it cannot pass unseen
    await cluster.wait_pod("stuck-1")
    await cluster.set_pod_status("stuck-1", {"phase": "Pending", "containerStatuses": [{
        "name": "main", "ready": False, "restartCount": 0, "image": "registry.invalid/nope:1", "imageID": "",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]})

    async def says_why():
        workload = await cluster.workload("stuck")
        return workload if workload["status"].get("reason") == "ImagePullBackOff" else None

    waiting = await wait_for(says_why, "the waiting reason in status")
    assert waiting["status"]["state"] == "preparing" and waiting["status"]["message"] == "Back-off pulling image"
    # Now the timeout. It counts from the entry to preparing: this one ends 2 s from now, on the operator's timer.
    entered = waiting["status"]["history"][-1]
    assert entered["to"] == "preparing"
    await cluster.patch_spec("stuck", preparingTimeoutSeconds=math.ceil(seconds_since(entered["at"])) + 2)
    workload = await cluster.wait_state("stuck", "failed")
    assert workload["status"]["reason"] == "PreparingTimeout"
    assert "ImagePullBackOff" in [e["reason"] for e in await cluster.events_for("stuck")]


# --- restarts in the middle ----------------------------------------------------------------------

async def test_a_deadline_that_passes_while_the_operator_is_down_fails_it_on_return(cluster: Cluster, operator: Operator):
    running = await cluster.start_running("late")  # no deadline yet: nothing can end it before the operator stops
    await operator.stop()
    await cluster.patch_spec("late", activeDeadlineSeconds=2)  # set while nobody watches (counted from startTime) ...
    await pass_time_until(running["status"]["startTime"], 2)  # ... and passed while nobody watches
    await operator.start()
    workload = await cluster.wait_state("late", "failed")
    assert workload["status"]["reason"] == "DeadlineExceeded"
    assert assert_valid_history(workload)[-1] == ("running", "failed")


async def test_a_ttl_that_passes_while_the_operator_is_down_deletes_it_on_return(cluster: Cluster, operator: Operator):
    await cluster.create_workload("expired")  # no TTL yet: nothing can delete it before the operator stops
    await cluster.wait_pod("expired-1")
    await cluster.pod_exited("expired-1", 0)
    completed = await cluster.wait_state("expired", "completed")
    await operator.stop()
    await cluster.patch_spec("expired", ttlSecondsAfterFinished=1)  # set while nobody watches ...
    await pass_time_until(completed["status"]["completionTime"], 1)  # ... and passed while nobody watches
    await operator.start()
    await cluster.wait_gone("expired")


async def test_a_finished_workload_found_at_a_restart_has_its_pods_tidied_and_is_released_on_delete(
        cluster: Cluster, status_writes, operator: Operator):
    """A restarted operator holds a finished Workload it lists outside kopf (it waits on nothing): its pods' events
    and its deletion still reach it."""
    await cluster.create_workload("found")
    await cluster.wait_pod("found-1")
    await cluster.pod_exited("found-1", 0)
    await cluster.wait_state("found", "completed")
    await wait_for(lambda: retired_pod(cluster, "found-1"), "found-1 retired")
    await operator.stop()
    # As if the operator had stopped between its write of `completed` and the pod's retirement.
    await cluster.label_pod("found-1", **{RETIRED_LABEL: None})
    await operator.start()
    await wait_for(lambda: retired_pod(cluster, "found-1"), "found-1 retired by the restarted operator")
    # kopf never handled it (its handlers log each object they are invoked for, prefixed with its name).
    assert f"[{cluster.namespace}/found] Handler" not in await operator.stop()
    await operator.start()
    await cluster.delete_workload("found")
    await cluster.wait_gone("found")
    await cluster.wait_pod_gone("found-1")
    assert status_writes("found") == 5  # nothing written since it finished


async def test_readiness_lost_while_the_operator_is_down_is_seen_on_return(cluster: Cluster, operator: Operator):
    await cluster.create_workload("notebook", **SERVICE)
    await cluster.wait_pod("notebook-1")
    await cluster.pod_ready("notebook-1")
    await cluster.wait_state("notebook", "serving")
    await operator.stop()
    await cluster.pod_ready("notebook-1", ready=False)
    await operator.start()

    async def not_ready():
        workload = await cluster.workload("notebook")
        ready = {c["type"]: c["status"] for c in workload["status"]["conditions"]}["Ready"]
        return workload if ready == "False" else None

    workload = await wait_for(not_ready, "Ready=False after the restart")
    assert workload["status"]["state"] == "serving"


async def test_the_queue_limit_holds_across_a_restart(cluster: Cluster, operator: Operator, monkeypatch):
    await operator.stop()
    monkeypatch.setenv("WORKLOAD_OPERATOR_MAX_ACTIVE_PER_NAMESPACE", "1")
    await operator.start()
    await cluster.start_running("holder")
    await cluster.create_workload("waiter")
    await cluster.wait_state("waiter", "queued")
    await operator.stop()
    await operator.start()
    # Whatever the order of the initial events, the waiter may not start while the holder is active.
    await cluster.pod_exited("holder-1", 0)
    await cluster.wait_pod("waiter-1")
    waiter = await cluster.wait_state("waiter", "preparing")  # the pod is made first, then the status that says so
    holder = await cluster.workload("holder")
    assert holder["status"]["state"] == "completed"
    assert waiter["status"]["history"][-1]["at"] >= holder["status"]["completionTime"]
