"""The cluster tier: the same scenarios against a real kube-apiserver named by WORKLOAD_TEST_KUBECONFIG.

It needs only a kube-apiserver with etcd: no controller-manager, scheduler or garbage collector (the tests
play the kubelet by writing pods/status; unscheduled pods are deleted at once). The generated CRD (the
same as crds/workloads.yaml, drift-tested) is installed; every test gets its own namespace, with the
`default` ServiceAccount that no controller creates here.
"""

from __future__ import annotations

import collections
import os
import pathlib
import uuid
from collections.abc import Iterator

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import Cluster, Operator
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster import control_plane
from workload_operator.kube import Kube

KUBECONFIG_ENV = "WORKLOAD_TEST_KUBECONFIG"
SKIP_REASON = (f"cluster tier: set {KUBECONFIG_ENV} to the kubeconfig of a real kube-apiserver, or KUBEBUILDER_ASSETS "
               "to envtest binaries, to run it (CI has neither: no registry here ships kube-apiserver)")


def _has_api_server() -> bool:
    return bool(os.environ.get(KUBECONFIG_ENV)) or control_plane.binaries() is not None


@pytest.hookimpl(tryfirst=True)  # before -m filters on the marker added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.cluster)
            if not _has_api_server():
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[pathlib.Path]:
    """The given cluster's kubeconfig, or one of etcd + kube-apiserver started from envtest binaries."""
    if os.environ.get(KUBECONFIG_ENV):
        yield pathlib.Path(os.environ[KUBECONFIG_ENV]).expanduser()
        return
    binaries = control_plane.binaries()
    assert binaries is not None  # else the tier is skipped at collection
    with control_plane.real_control_plane(*binaries) as path:
        yield path


@pytest.fixture(scope="session")
def crd_installed(kubeconfig: pathlib.Path) -> None:
    """Install (or update) the generated CRD and wait until the API server serves it."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    control_plane.install_crd(kubernetes.client.ApiClient(configuration), replace=True)


@pytest.fixture()
def namespace() -> str:
    return f"wl-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
async def cluster(kubeconfig, crd_installed, namespace, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # the operator's own client and login read it
    cluster = Cluster(kubeconfig, namespace)
    await cluster.create_namespace()
    yield cluster
    # With no namespace controller the namespace would stay Terminating: leave it, it is empty.
    try:
        await cluster._call(cluster.core.delete_namespace, namespace)
    except ApiException:
        pass




@pytest.fixture()
async def operator(cluster: Cluster, audit):
    operator = Operator(cluster.namespace)
    await operator.start()
    yield operator
    if operator.runner is None:
        await operator.start()
    # Delete what is left while the operator runs, so its finalizer is released and nothing is stuck.
    listing = await cluster._call(cluster.custom.list_namespaced_custom_object, GROUP, VERSION, cluster.namespace, PLURAL)
    for item in listing["items"]:
        name = item["metadata"]["name"]
        try:
            await cluster.delete_workload(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
        await cluster.wait_gone(name)
    await operator.stop()


@pytest.fixture()
def status_writes(monkeypatch):
    """How many status writes the operator sent for a Workload (a spy on its client: refused ones too)."""
    calls: collections.Counter[str] = collections.Counter()
    write_status = Kube.write_status

    async def counting(self: Kube, view, new):
        calls[view.name] += 1
        return await write_status(self, view, new)

    monkeypatch.setattr(Kube, "write_status", counting)
    return lambda name: calls[name]

