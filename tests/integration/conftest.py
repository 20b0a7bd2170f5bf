from collections.abc import AsyncIterator
from pathlib import Path

import kmock
import pytest
import yaml

from tests.harness import Cluster, Operator, write_kubeconfig
from workload_operator.devcluster.emulator import KubeAPIServer

WORKLOAD_CRD = Path(__file__).parents[2] / 'crds' / 'workloads.yaml'


@pytest.fixture()
async def kube_api() -> AsyncIterator[KubeAPIServer]:
    """A running in-memory kube-apiserver with the built-ins and the Workload CRD; `kube_api.url`."""
    async with KubeAPIServer() as api, kmock.Server(api):
        api.register_crd(yaml.safe_load(WORKLOAD_CRD.read_text()))
        yield api
        await api.close_watches()  # open watch-streams end cleanly, as on an apiserver's shutdown


NAMESPACE = "ml"


@pytest.fixture()
def kubeconfig(kube_api, tmp_path, monkeypatch):
    path = write_kubeconfig(tmp_path / "kubeconfig", str(kube_api.url).rstrip("/"))
    monkeypatch.setenv("KUBECONFIG", str(path))  # both kopf's login and the operator's client read it
    return path


@pytest.fixture()
async def cluster(kubeconfig) -> Cluster:
    cluster = Cluster(kubeconfig, NAMESPACE)
    await cluster.create_namespace()
    return cluster




@pytest.fixture()
async def operator(cluster, audit):
    operator = Operator(NAMESPACE)
    await operator.start()
    yield operator
    if operator.runner is not None:
        await operator.stop()


@pytest.fixture()
def status_writes(kube_api):
    """How many status writes were sent for a Workload, from the emulator's request log (refused ones too)."""
    def count(name: str) -> int:
        return len(kube_api.writes(resource="workloads", subresource="status", name=name, methods=("PATCH", "PUT")))
    return count
