"""Pod templates on every tier: imported by tests/integration (kmock, with its minimal Pod Security admission)
and tests/cluster (a real API server's PodSecurity admission). The fixtures are the scenarios' own."""

from __future__ import annotations

import pytest

from tests.harness import Cluster

pytestmark = pytest.mark.usefixtures("operator")

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
