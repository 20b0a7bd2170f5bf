"""Pod templates on the emulated tier: the shared scenarios, and that a refused pod is retried only with backoff."""

import time

import pytest

from tests.harness import Cluster
from tests.templates import *  # noqa: F403  (the shared scenarios run on this tier too)
from tests.templates import PRIVILEGED, enforce

pytestmark = pytest.mark.usefixtures("operator")


async def test_a_pod_security_refusal_is_not_retried_in_a_tight_loop(cluster: Cluster, kube_api):
    await enforce(cluster, "baseline")
    started = time.monotonic()
    await cluster.create_workload("host", template={"spec": {"hostNetwork": True, **PRIVILEGED["spec"]}})
    workload = await cluster.wait_reason("host", "PodCreationFailed")
    assert 'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), privileged' in workload["status"]["message"]

    def tries() -> int:
        return len([r for r in kube_api.writes(resource="pods", methods=("POST",)) if b'"host-1"' in r.body])

    await cluster.create_workload("marker")  # handled after the refusal: the operator has had time to loop, if it did
    await cluster.wait_pod("marker-1")
    # One try per event of the workload's own (its creation, the finalizer, queued, the refusal shown): a burst
    # that ends, then only the backoff's timer (10 s, doubling).
    burst = tries()
    assert 1 <= burst <= 5, burst
    await cluster.create_workload("later")
    await cluster.wait_state("later", "preparing")
    assert tries() <= burst + (time.monotonic() - started) // 10
