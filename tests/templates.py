"""Pod templates on every tier: imported by tests/integration (kmock, with its minimal Pod Security admission)
and tests/cluster (a real API server's PodSecurity admission). The fixtures are the scenarios' own."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tests.harness import Cluster, assert_valid_history

pytestmark = pytest.mark.usefixtures("operator")
EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"

PRIVILEGED = {"spec": {"containers": [{"name": "main", "securityContext": {"privileged": True}}]}}
# What the restricted level asks of every container.
RESTRICTED = {"spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                       "containers": [{"name": "main", "securityContext": {
                           "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}


async def enforce(cluster: Cluster, level: str) -> None:
    body = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}}
    await cluster._call(cluster.core.patch_namespace, cluster.namespace, body)


async def test_a_namespace_that_enforces_restricted_refuses_a_privileged_template(cluster: Cluster, status_writes):
    await enforce(cluster, "restricted")
    await cluster.create_workload("root", template=PRIVILEGED)
    workload = await cluster.wait_reason("root", "PodCreationFailed")
    assert (workload["status"]["state"], workload["status"]["attempts"]) == ("queued", 0)
    message = workload["status"]["message"]
    assert message.startswith('pod ml/root-1 not created: pods "root-1" is forbidden: violates PodSecurity "restricted:latest": ') \
        or 'violates PodSecurity "restricted:latest"' in message, message
    assert 'privileged (container "main" must not set securityContext.privileged=true)' in message, message
    assert await cluster.pod("root-1") is None
    # A template that meets the level runs in the same namespace.
    await cluster.create_workload("polite", template=RESTRICTED)
    await cluster.wait_pod("polite-1")
    await cluster.wait_state("polite", "preparing")
    assert status_writes("root") == 2  # queued, then the refusal shown once (retries write nothing new)


async def test_each_examples_pod_carries_what_its_workload_asked_for(cluster: Cluster):
    examples = {doc["metadata"]["name"]: doc for path in sorted(EXAMPLES.glob("*.yaml"))
                for doc in yaml.safe_load_all(path.read_text()) if doc}
    # What the examples' headers say must exist: a real API server refuses a pod whose ServiceAccount does not.
    await cluster._create_unless_there(cluster.core.create_namespaced_service_account, cluster.namespace,
                                       {"metadata": {"name": "jupyter"}})
    for name in ("llm", "notebook", "train-resnet"):
        await cluster.create_raw(name, examples[name]["spec"], strict=True)
    llm, notebook, train = [(await cluster.wait_pod(f"{name}-1"))["spec"] for name in ("llm", "notebook", "train-resnet")]

    def main(spec):
        return next(c for c in spec["containers"] if c["name"] == "main")

    assert llm["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert llm["tolerations"][0]["key"] == "nvidia.com/gpu"
    volumes = {v["name"]: v for v in llm["volumes"]}
    assert volumes["hf-cache"]["persistentVolumeClaim"]["claimName"] == "hf-cache"
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    assert main(llm)["env"][0]["valueFrom"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    assert {m["mountPath"] for m in main(llm)["volumeMounts"]} == {"/root/.cache/huggingface", "/dev/shm"}
    assert notebook["serviceAccountName"] == "jupyter" and notebook["automountServiceAccountToken"] is False
    assert {m["mountPath"] for m in main(notebook)["volumeMounts"]} == {"/home/jovyan"}
    assert [c["name"] for c in train["initContainers"]] == ["stage-data"]
    assert {m["mountPath"] for m in main(train)["volumeMounts"]} == {"/data", "/checkpoints", "/dev/shm"}
    for spec in (llm, notebook, train):
        assert not [e for c in spec["containers"] for e in c.get("env") or [] if e["name"].startswith("SIMULATE")]


async def test_a_plain_batch_run_through_container_creating_writes_once_per_transition(cluster: Cluster, status_writes):
    await cluster.create_workload("plain", shmSize="1Gi", template={"metadata": {"labels": {"team": "vision"}}})
    pod = await cluster.wait_pod("plain-1")
    assert pod["metadata"]["labels"]["team"] == "vision"
    await cluster.wait_state("plain", "preparing")
    creating = {"name": "main", "ready": False, "restartCount": 0, "image": "busybox", "imageID": "",
                "state": {"waiting": {"reason": "ContainerCreating"}}}
    await cluster.set_pod_status("plain-1", {"phase": "Pending", "containerStatuses": [creating]})  # routine: not written
    await cluster.pod_running("plain-1")
    await cluster.wait_state("plain", "running")
    await cluster.pod_exited("plain-1", 0)
    workload = await cluster.wait_state("plain", "completed")
    transitions = assert_valid_history(workload)
    assert transitions == [(None, "queued"), ("queued", "preparing"), ("preparing", "running"),
                           ("running", "collecting"), ("collecting", "completed")]
    assert status_writes("plain") == len(transitions)
