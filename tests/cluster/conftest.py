"""The cluster tier: the same scenarios against a real kube-apiserver.

The control plane is the one named by WORKLOAD_TEST_KUBECONFIG, or one started here for the session: etcd and
kube-apiserver from the envtest variables or from the project's own build (tests/controlplane/build.sh, which
the README's test command runs first), with the real kube-controller-manager's garbage collector, namespace,
serviceaccount, node-lifecycle and taint-eviction controllers and the real kube-scheduler (for pods that name
it) when the binaries include them. The operator runs as a user with only what deploy/'s ClusterRole grants.

The tests play the kubelet by writing pods/status; a pod that no scheduler binds is deleted at once. The
generated CRD (the same as crds/workloads.yaml, drift-tested) is installed; every test gets its own namespace.
With WORKLOAD_TEST_REQUIRE_CLUSTER set (CI sets it), a tier with no server fails instead of being skipped.
"""

from __future__ import annotations

import collections
import os
import pathlib
import uuid
from collections.abc import Iterator

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.harness import Cluster, Operator
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster import control_plane
from workload_operator.kube import Kube

KUBECONFIG_ENV = "WORKLOAD_TEST_KUBECONFIG"
REQUIRE_ENV = "WORKLOAD_TEST_REQUIRE_CLUSTER"
ROOT = pathlib.Path(__file__).parents[2]
SKIP_REASON = (f"cluster tier: no kube-apiserver; run tests/controlplane/build.sh (it builds one from Go modules), "
               f"or set KUBEBUILDER_ASSETS to envtest binaries, or {KUBECONFIG_ENV} to a real server's kubeconfig")


def _has_api_server() -> bool:
    return bool(os.environ.get(KUBECONFIG_ENV)) or control_plane.binaries() is not None


@pytest.hookimpl(tryfirst=True)  # before -m filters on the marker added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = pathlib.Path(__file__).parent
    ours = [item for item in items if here in pathlib.Path(item.fspath).parents]
    for item in ours:
        item.add_marker(pytest.mark.cluster)
    if ours and not _has_api_server():
        if os.environ.get(REQUIRE_ENV):
            raise pytest.UsageError(f"{REQUIRE_ENV} is set and {SKIP_REASON.removeprefix('cluster tier: ')}")
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def control_plane_started() -> Iterator[control_plane.ControlPlane | None]:
    """The control plane started for the session, or None when the tier runs on the given kubeconfig's server."""
    if os.environ.get(KUBECONFIG_ENV):
        yield None
        return
    binaries = control_plane.binaries()
    assert binaries is not None  # else the tier is skipped at collection
    controllers = control_plane.CONTROLLERS if binaries.controller_manager else ()
    with control_plane.real_control_plane(binaries, scheduler=binaries.scheduler is not None,
                                          controllers=controllers) as plane:
        yield plane


@pytest.fixture(scope="session")
def kubeconfig(control_plane_started) -> pathlib.Path:
    """An administrator's kubeconfig: the tests' own side (users, the kubelet, the scheduler where played)."""
    if control_plane_started is None:
        return pathlib.Path(os.environ[KUBECONFIG_ENV]).expanduser()
    return control_plane_started.kubeconfig


def _admin(kubeconfig: pathlib.Path) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


@pytest.fixture(scope="session")
def crd_installed(kubeconfig: pathlib.Path) -> None:
    """Install (or update) the generated CRD and wait until the API server serves it."""
    control_plane.install_crd(_admin(kubeconfig), replace=True)


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane_started, kubeconfig) -> pathlib.Path:
    """The identity the operator runs as: on the session's own control plane a user with no group, bound to
    deploy/clusterrole.yaml's ClusterRole and nothing else, so every scenario checks those rules on a real
    authorizer; on a given server, its kubeconfig's own user."""
    if control_plane_started is None:
        return kubeconfig
    role = yaml.safe_load((ROOT / "deploy" / "clusterrole.yaml").read_text())
    control_plane.grant(_admin(kubeconfig), role, control_plane.OPERATOR_USER)
    return control_plane_started.kubeconfig_for(control_plane.OPERATOR_USER)


@pytest.fixture()
def namespace() -> str:
    return f"wl-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
async def cluster(control_plane_started, kubeconfig, operator_kubeconfig, crd_installed, namespace, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(operator_kubeconfig))  # the operator's own client and login read it
    cluster = Cluster(kubeconfig, namespace)
    if control_plane_started is not None:
        cluster.audit_log = control_plane_started.audit_log
        cluster.garbage_collector = "garbage-collector-controller" in control_plane_started.controllers
    await cluster.create_namespace()
    yield cluster
    # The namespace controller empties and removes it (where none runs, it stays Terminating, empty).
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

