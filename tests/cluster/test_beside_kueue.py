"""Beside Kueue: its CRD `workloads.kueue.x-k8s.io` is kind Workload too, short name `wl`. With it installed, every
kubectl command the README and docs teach reaches this project's Workloads, with no warning; a bare `wl` reaches
Kueue's, which is why the docs never use it."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import Cluster
from workload_operator.devcluster import control_plane

KUBECTL = shutil.which("kubectl")
pytestmark = [pytest.mark.usefixtures("operator"),
              pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")]
# Kueue's CRD as far as kubectl's discovery sees it (apis/kueue/v1beta1/workload_types.go: shortName wl).
KUEUE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "workloads.kueue.x-k8s.io"},
    "spec": {"group": "kueue.x-k8s.io", "scope": "Namespaced",
             "names": {"kind": "Workload", "plural": "workloads", "singular": "workload", "shortNames": ["wl"],
                       "listKind": "WorkloadList"},
             "versions": [{"name": "v1beta1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture()
def kueue_crd(kubeconfig: pathlib.Path):
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api = kubernetes.client.ApiextensionsV1Api(kubernetes.client.ApiClient(configuration))
    try:
        api.create_custom_resource_definition(KUEUE_CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise
    control_plane.wait_served(api.api_client, KUEUE_CRD)
    yield
    control_plane.delete_crd(api.api_client, KUEUE_CRD["metadata"]["name"])  # gone before Kueue's own is installed


async def kubectl(kubeconfig: pathlib.Path, cache: pathlib.Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    process = await asyncio.create_subprocess_exec(KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache),
                                                   *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_the_documented_commands_reach_our_workloads_beside_kueues(cluster: Cluster, kubeconfig, kueue_crd,
                                                                       tmp_path):
    ns, cache = cluster.namespace, tmp_path / "cache"
    # One Kueue Workload and one of ours, of the same name.
    custom = cluster.custom
    await cluster._call(custom.create_namespaced_custom_object, "kueue.x-k8s.io", "v1beta1", ns, "workloads",
                        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "Workload", "metadata": {"name": "train"},
                         "spec": {"queueName": "gpus"}})
    await cluster.create_workload("train")
    await cluster.wait_pod("train-1")
    await cluster.pod_running("train-1")
    await cluster.pod_exited("train-1", 0)
    await cluster.wait_state("train", "completed")

    def ours(out: str) -> bool:
        return "completed" in out or "ml.lifecycle.dev" in out

    for args in (["get", "mlwl"], ["get", "workloads.ml.lifecycle.dev"], ["get", "ml"], ["get", "mlwl", "train", "-o",
                 "jsonpath={.apiVersion} {.status.state}"], ["describe", "mlwl", "train"],
                 ["wait", "--for=condition=Finished", "mlwl/train", "--timeout=30s"],
                 ["wait", "--for=jsonpath={.status.state}=completed", "mlwl/train", "--timeout=30s"]):
        code, out, err = await kubectl(kubeconfig, cache, "-n", ns, *args)
        assert code == 0 and err == "", (args, err)
        assert ours(out), (args, out)
    # The names the docs avoid: kubectl takes Kueue's.
    code, out, err = await kubectl(kubeconfig, cache, "-n", ns, "get", "wl", "train", "-o", "jsonpath={.apiVersion}")
    assert (code, out) == (0, "kueue.x-k8s.io/v1beta1"), (out, err)
    code, out, err = await kubectl(kubeconfig, cache, "-n", ns, "delete", "mlwl", "train")
    assert code == 0 and err == "", err
    await cluster.wait_gone("train")
    assert (await cluster._call(custom.get_namespaced_custom_object, "kueue.x-k8s.io", "v1beta1", ns, "workloads",
                                "train"))["spec"] == {"queueName": "gpus"}
