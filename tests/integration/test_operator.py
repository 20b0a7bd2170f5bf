"""The real operator (KopfRunner, kopf's HTTP stack, the official client) against the emulated API.

The shared scenarios (tests/scenarios.py) plus what only the emulator can show: the request log
(status writes, server-side selection) and a concurrent writer hooked between read and write.
"""

from __future__ import annotations

import copy
import datetime
import json

import kopf
import pytest

from tests.harness import Cluster, assert_valid_history, wait_for
from tests.scenarios import *  # noqa: F403  (the shared scenarios run on this tier too)
from workload_operator.handlers import workloads_by_uid
from workload_operator.held import held
from workload_operator.lifecycle import WorkloadStatus, apply_transition
from workload_operator.lifecycle.decide import WorkloadView

pytestmark = pytest.mark.usefixtures("operator")


async def test_an_invalid_spec_fails_naming_the_field(cluster: Cluster, status_writes):
    await cluster.create_workload("typo", maxAttempts=0, gpus=2)
    workload = await cluster.wait_state("typo", "failed")
    assert workload["status"]["reason"] == "InvalidSpec"
    assert "spec.maxAttempts" in workload["status"]["message"] and "spec.gpus: unknown field" in workload["status"]["message"]
    assert await cluster.pod("typo-1") is None
    assert status_writes("typo") == 2


async def test_a_concurrent_writer_wins_and_the_operator_decides_again(cluster: Cluster, kube_api, audit):
    await cluster.create_workload("race")
    await cluster.wait_pod("race-1")
    await cluster.wait_state("race", "preparing")

    async def someone_else_fails_it_first(request) -> None:
        # Runs when the operator's write arrives, before the emulator serves it: a real concurrent write.
        current = WorkloadStatus.model_validate((await cluster.workload("race"))["status"])
        failed = apply_transition(current, "failed", reason="ManualStop", message="stopped by hand",
                                  now=datetime.datetime.now(datetime.UTC))
        status = failed.model_dump(mode="json", by_alias=True, exclude_none=True)
        await cluster.patch_status("race", [{"op": "test", "path": "/status/state", "value": "preparing"},
                                            {"op": "replace", "path": "/status", "value": status}])
        # Returning nothing lets the emulator serve the operator's write as usual: its test op fails.

    def operator_moves_race_to_running(request) -> bool:
        return (request.method == "PATCH" and request.url.path.endswith("/workloads/race/status")
                and any(op.get("path") == "/status" and op["value"].get("state") == "running"
                        for op in json.loads(request.body)))

    hooked = kube_api[operator_moves_race_to_running]
    hooked[:1] << someone_else_fails_it_first
    await cluster.pod_running("race-1")

    workload = await cluster.wait_state("race", "failed")
    assert len(hooked) >= 1, "the operator never tried to record running"
    assert workload["status"]["reason"] == "ManualStop"
    assert assert_valid_history(workload) == [(None, "queued"), ("queued", "preparing"), ("preparing", "failed")]
    assert ("preparing", "running") not in audit.transitions("race")  # refused, so neither logged nor an Event
    assert "Started" not in [e["reason"] for e in await cluster.events_for("race")]


async def test_the_operator_watches_only_its_own_pods(cluster: Cluster, kube_api):
    await cluster.create_workload("selector")
    await cluster.wait_pod("selector-1")
    pod_reads = [r for r in list(kube_api) if r.method == "GET" and r.url.path == "/api/v1/namespaces/ml/pods"]
    assert {r.params.get("watch") == "true" for r in pod_reads} == {True, False}, "a list, then a watch"
    for request in pod_reads:  # and not those it has retired
        assert request.params.get("labelSelector") == "app.kubernetes.io/managed-by=workload-operator,!ml.lifecycle.dev/retired"
    assert not [r for r in list(kube_api) if r.method == "GET" and r.url.path == "/api/v1/pods"], "no cluster-wide pods"


async def test_transient_api_failures_are_retried(cluster: Cluster, kube_api, status_writes):
    kube_api.inject_error(503, "etcd is slow", method="POST", resource="pods", count=2)
    await cluster.create_workload("patient")
    pod = await cluster.wait_pod("patient-1")
    workload = await cluster.wait_state("patient", "preparing")
    assert pod["metadata"]["name"] == "patient-1" and workload["status"]["attempts"] == 1  # no attempt burnt
    assert len(kube_api.writes(resource="pods", methods=("POST",))) == 3
    assert status_writes("patient") == 2


async def test_a_pod_that_cannot_be_created_is_shown_and_retried(cluster: Cluster, kube_api):
    quota = 'pods "quota-1" is forbidden: exceeded quota: gpu-quota, requested: nvidia.com/gpu=1, used: 4, limited: 4'
    kube_api.inject_error(403, quota, "Forbidden", method="POST", resource="pods", count=2)
    await cluster.create_workload("quota")
    await cluster.wait_pod("quota-1")  # retried until the quota allows it
    workload = await cluster.wait_state("quota", "preparing")
    assert workload["status"]["attempts"] == 1  # refused creations burn no attempt

    # Every stored version of the object: the failure was shown, in queued, before the pod existed.
    key = (kube_api.resource("ml.lifecycle.dev", "v1alpha1", "workloads"), cluster.namespace, "quota")
    shown = [v["status"] for v in kube_api.objects[key].history if (v.get("status") or {}).get("reason") == "PodCreationFailed"]
    assert shown and shown[0]["state"] == "queued" and shown[0]["attempts"] == 0
    assert shown[0]["message"] == f"pod ml/quota-1 not created: {quota}"
    warnings = [e for e in await cluster.wait_events("quota", 3) if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["PodCreationFailed"]


async def test_a_write_the_api_server_refuses_on_its_own_terms_is_reported_and_retried_later(cluster: Cluster, kube_api,
                                                                                          caplog):
    # A schema or CEL refusal (422 with field causes) is not a stale view: no re-read and retry at once, but
    # a log line and a Warning Event, then a new try after the backoff (here the refusal does not come back).
    kube_api["patch", kube_api.resource("ml.lifecycle.dev", "v1alpha1", "workloads")][:1] << 422 << {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422, "reason": "Invalid",
        "message": "Workload.ml.lifecycle.dev \"refused\" is invalid: status.reason: Invalid value",
        "details": {"causes": [{"reason": "FieldValueInvalid", "field": "status.reason"}]}}
    await cluster.create_workload("refused")

    async def reported():
        return [r for r in caplog.records if "the API server refused the write" in r.getMessage()]

    await wait_for(reported, "the refusal in the operator's log")
    workload = await cluster.wait_state("refused", "preparing")  # tried again after the backoff
    assert assert_valid_history(workload)[:2] == [(None, "queued"), ("queued", "preparing")]
    events = await cluster.wait_events("refused", 3)
    assert [e["reason"] for e in events if e["type"] == "Warning"] == ["ReconcileFailed"]
    patches = [(r.url.path.rsplit("/", 1)[-1], r.body) for r in
               kube_api.writes(resource="workloads", name="refused", methods=("PATCH",))]
    # The finalizer patch refused, then once more after the backoff; then queued and preparing. No tight loop.
    assert [path for path, _ in patches] == ["refused", "refused", "status", "status"], patches


async def test_the_ttl_deletes_once(cluster: Cluster, kube_api, audit):
    await test_the_ttl_deletes_a_finished_workload(cluster, audit)  # the shared scenario, then its request count
    assert len(kube_api.writes(resource="workloads", subresource=None, name="brief", methods=("DELETE",))) == 1


async def test_the_index_lets_go_of_a_finished_workloads_spec_and_status_and_keeps_a_running_ones(cluster: Cluster):
    """kopf holds each event's body until its handler has run (at start-up, every listed Workload's until every
    index is filled); once a finished Workload is indexed, only its metadata is read again."""
    running = await cluster.start_running("train")
    await cluster.pod_exited("train-1", 0)
    finished = await cluster.wait_state("train", "completed")
    uid = finished["metadata"]["uid"]

    for body, kept in ((running, running), (finished, {k: v for k, v in finished.items() if k not in ("spec", "status")})):
        source = copy.deepcopy(body)
        entry = await workloads_by_uid(body=kopf.Body(source), uid=uid, memo=kopf.Memo())
        assert entry == {uid: held(WorkloadView.from_body(body))}  # the index holds what it held before
        assert source == kept
