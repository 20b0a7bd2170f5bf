"""Admission by the real Kueue (its manager built from sigs.k8s.io/kueue by tests/controlplane/build.sh), on the
session's control plane: its plain-pod integration, its webhooks on loopback, one ClusterQueue of 8 GPUs per test.

The tests play the kubelet (pods/status); no scheduler binds the pods. Kueue's finalizer holds a deleted pod until
the pod has ended: for a pod never scheduled, that is the pod garbage collector's doing (it fails such pods, as
in any cluster, every 20 s), which these tests run too; hence their longer waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import assert_valid_history, wait_for
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster.kueue import KUEUE_NAMESPACE_LABEL, kueue_folder, running_kueue
from workload_operator.manifests import WORKLOAD_UID_LABEL

KUEUE = ("kueue.x-k8s.io", "v1beta2")
GPU = {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}}
PODGC = 60.0  # seconds: the pod garbage collector's 20 s period, and the rest, on a loaded machine


def gang(replicas: int = 4, **spec: Any) -> dict[str, Any]:
    """A gang of ``replicas`` pods of one GPU each, admitted by the LocalQueue ``team``."""
    return {"replicas": replicas, "resources": GPU, "queueName": "team", **spec}


@pytest.fixture(scope="module")
def kueue(control_plane_started) -> Iterator[None]:
    if control_plane_started is None:
        pytest.skip("Kueue runs on the session's own control plane, not on a given server")
    if kueue_folder() is None:
        cannot("no Kueue built: run tests/controlplane/build.sh")
    podgc = control_plane_started.start_controller_manager(("pod-garbage-collector-controller",),
                                                            name="podgc-controller-manager")
    try:
        with running_kueue(control_plane_started):
            yield
    except PermissionError as exc:
        cannot(str(exc))
    finally:
        podgc.terminate()
        podgc.wait(timeout=30)


def cannot(why: str) -> None:
    """Skip the Kueue scenarios, or fail them where the cluster tier is required (CI)."""
    if os.environ.get("WORKLOAD_TEST_REQUIRE_CLUSTER"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture()
async def queue(cluster, operator, kueue) -> AsyncIterator[str]:
    """The test's namespace given to Kueue, a ClusterQueue of 8 GPUs for it alone (preempting lower priorities
    within it), and the LocalQueue ``team``; returns the ClusterQueue's name."""
    await cluster._call(cluster.core.patch_namespace, cluster.namespace,
                        {"metadata": {"labels": {KUEUE_NAMESPACE_LABEL: "true"}}})
    name = f"gpus-{cluster.namespace}"
    quota = [{"name": "cpu", "nominalQuota": "100"}, {"name": "memory", "nominalQuota": "1000Gi"},
             {"name": "nvidia.com/gpu", "nominalQuota": "8"}]
    cluster_scoped = [
        ("resourceflavors", {"metadata": {"name": "default"}}),
        ("workloadpriorityclasses", {"metadata": {"name": "low"}, "value": 10}),
        ("workloadpriorityclasses", {"metadata": {"name": "high"}, "value": 1000}),
        ("clusterqueues", {"metadata": {"name": name}, "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": cluster.namespace}},
            "preemption": {"withinClusterQueue": "LowerPriority"},
            "resourceGroups": [{"coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                                "flavors": [{"name": "default", "resources": quota}]}]}}),
    ]
    for plural, body in cluster_scoped:
        kind = {"resourceflavors": "ResourceFlavor", "workloadpriorityclasses": "WorkloadPriorityClass",
                "clusterqueues": "ClusterQueue"}[plural]
        try:
            await cluster._call(cluster.custom.create_cluster_custom_object, *KUEUE, plural,
                                {"apiVersion": "/".join(KUEUE), "kind": kind, **body})
        except ApiException as exc:
            if exc.status != 409:
                raise
    await cluster._call(cluster.custom.create_namespaced_custom_object, *KUEUE, cluster.namespace, "localqueues",
                        {"apiVersion": "/".join(KUEUE), "kind": "LocalQueue", "metadata": {"name": "team"},
                         "spec": {"clusterQueue": name}})
    yield name
    # Deleted while the operator runs: their pods go, and once the pod garbage collector has failed those Kueue
    # holds, so do they.
    listing = await cluster._call(cluster.custom.list_namespaced_custom_object, GROUP, VERSION, cluster.namespace,
                                  PLURAL)
    for item in listing["items"]:
        await cluster.delete_workload(item["metadata"]["name"])
    for item in listing["items"]:
        await cluster.wait_gone(item["metadata"]["name"], timeout=PODGC)


def kubectl_get(cluster, kubeconfig) -> str:
    """What a user sees: `kubectl get mlwl` in the namespace."""
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "-n", cluster.namespace, "get", "mlwl"],
                          capture_output=True, text=True, check=True, timeout=30).stdout


async def states(cluster, names: list[str]) -> dict[str, tuple[str, str]]:
    found = {}
    for name in names:
        status = ((await cluster.workload(name)) or {}).get("status") or {}
        found[name] = (status.get("state"), status.get("reason"))
    return found


async def wait_states(cluster, names: list[str], check) -> dict[str, tuple[str, str]]:
    seen: dict[str, tuple[str, str]] = {}

    async def reached() -> dict[str, tuple[str, str]] | None:
        seen.update(await states(cluster, names))
        return dict(seen) if check(seen) else None
    try:
        return await wait_for(reached, f"the states of {names} to pass {check.__name__}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the states: {seen}") from None


async def pods_of(cluster, workload: dict[str, Any]) -> list[dict[str, Any]]:
    listing = await cluster._call(cluster.core.list_namespaced_pod, cluster.namespace,
                                  label_selector=f"{WORKLOAD_UID_LABEL}={workload['metadata']['uid']}")
    return listing["items"]


async def kueue_workload(cluster, name: str) -> dict[str, Any] | None:
    try:
        return await cluster._call(cluster.custom.get_namespaced_custom_object, *KUEUE, cluster.namespace,
                                   "workloads", name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def run_gang(cluster, name: str, attempt: int = 1, replicas: int = 4) -> None:
    for index in range(replicas):
        await cluster.pod_running(f"{name}-{attempt}-{index}")
    await cluster.wait_state(name, "running")


async def finish_gang(cluster, name: str, attempt: int = 1, replicas: int = 4) -> None:
    for index in range(replicas):
        await cluster.pod_exited(f"{name}-{attempt}-{index}", 0)
    await cluster.wait_state(name, "completed")


async def test_three_gangs_of_four_gpus_in_a_quota_of_eight_two_run_and_one_waits_until_one_ends(
        cluster, queue, kubeconfig):
    names = ["gang-a", "gang-b", "gang-c"]
    for name in names:
        await cluster.create_workload(name, **gang())

    def two_admitted_one_waiting(now: dict[str, tuple[str, str]]) -> bool:
        return sorted(str(state) for state in now.values()) == [
            str(("preparing", "Admitted")), str(("preparing", "Admitted")), str(("queued", "WaitingForAdmission"))]

    seen = await wait_states(cluster, names, two_admitted_one_waiting)
    admitted = [name for name in names if seen[name][0] == "preparing"]
    (waiting,) = [name for name in names if seen[name][0] == "queued"]
    moments = [kubectl_get(cluster, kubeconfig)]
    held = await cluster.workload(waiting)
    assert held["status"]["message"].startswith("waiting for admission by Kueue in LocalQueue team")
    assert held["status"]["attempts"] == 1
    pods = await pods_of(cluster, held)
    assert len(pods) == 4 and all(
        "kueue.x-k8s.io/admission" in [gate["name"] for gate in pod["spec"].get("schedulingGates") or []] for pod in pods)
    assert (await kueue_workload(cluster, f"{waiting}-1")) is not None  # Kueue's own, named after the group

    for name in admitted:
        await run_gang(cluster, name)
    moments.append(kubectl_get(cluster, kubeconfig))
    assert (await states(cluster, [waiting]))[waiting] == ("queued", "WaitingForAdmission")

    await finish_gang(cluster, admitted[0])
    await cluster.wait_reason(waiting, "Admitted")
    moments.append(kubectl_get(cluster, kubeconfig))
    assert assert_valid_history(await cluster.workload(waiting))[-2:] == [(None, "queued"), ("queued", "preparing")]
    # The three moments as a user sees them (pytest -s shows them; the operator's runner holds sys.stdout): the
    # table says the same as the status.
    sys.__stdout__.write("\n" + "\n".join(moments))
    row = lambda moment, name: next(line.split() for line in moment.splitlines() if line.startswith(name + " "))  # noqa: E731
    assert row(moments[0], waiting)[1:3] == ["queued", "batch"] and row(moments[0], admitted[0])[1] == "preparing"
    assert row(moments[1], admitted[1])[1] == "running" and row(moments[1], waiting)[1] == "queued"
    assert row(moments[2], admitted[0])[1] == "completed" and row(moments[2], waiting)[1] == "preparing"


@pytest.mark.parametrize("how", ["cancel", "delete"])
async def test_a_workload_waiting_for_admission_ends_and_leaves_nothing_behind(cluster, queue, how):
    for name in ("first", "second"):
        await cluster.create_workload(name, **gang())
    await cluster.create_workload("third", **gang())
    await cluster.wait_reason("third", "WaitingForAdmission")
    third = await cluster.workload("third")
    assert len(await pods_of(cluster, third)) == 4
    if how == "cancel":
        await cluster.patch_spec("third", cancel=True)
        ended = await cluster.wait_state("third", "cancelled", timeout=PODGC)
        assert assert_valid_history(ended)[-1] == ("queued", "cancelled")
    else:
        await cluster.delete_workload("third")
        await cluster.wait_gone("third", timeout=PODGC)

    async def nothing_left() -> bool:  # Kueue's finalizer released, its own Workload collected with the pods
        return not await pods_of(cluster, third) and await kueue_workload(cluster, "third-1") is None
    await wait_for(nothing_left, "the held pods and Kueue's Workload to be gone", timeout=PODGC)


async def test_a_higher_priority_gang_preempts_a_lower_one_which_runs_again_without_spending_an_attempt(
        cluster, queue):
    priority = lambda name: {"template": {"metadata": {"labels": {"kueue.x-k8s.io/priority-class": name}}}}  # noqa: E731
    await cluster.create_workload("low", **gang(8, maxAttempts=1, **priority("low")))
    await cluster.wait_reason("low", "Admitted")
    await run_gang(cluster, "low", replicas=8)

    await cluster.create_workload("high", **gang(8, **priority("high")))
    requeued = await cluster.wait_reason("low", "WaitingForAdmission", timeout=PODGC)
    edges = assert_valid_history(requeued)
    assert edges[-3:] == [("preparing", "running"), ("running", "orphaned"), ("orphaned", "queued")]
    assert [entry["reason"] for entry in requeued["status"]["history"][-2:]] == ["EvictedByKueue", "RequeuedByKueue"]
    assert requeued["status"]["attempts"] == 2 and requeued["status"]["evictions"] == 1
    await cluster.wait_reason("high", "Admitted", timeout=PODGC)
    await run_gang(cluster, "high", replicas=8)
    await finish_gang(cluster, "high", replicas=8)

    await cluster.wait_reason("low", "Admitted", timeout=PODGC)
    await run_gang(cluster, "low", attempt=2, replicas=8)
    assert (await cluster.workload("low"))["status"]["attempts"] == 2  # with maxAttempts 1: Kueue's was not counted
