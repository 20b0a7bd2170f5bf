"""The control plane's build and its discovery: the release Python starts is the one tests/controlplane/go.mod
pins, every Kubernetes staging module is pinned to that release, and binaries are found in the envtest
variables first, then in the build cache."""

import os
import pathlib
import re

import pytest

from workload_operator.devcluster import control_plane

GO_MOD = (pathlib.Path(__file__).parents[2] / "tests" / "controlplane" / "go.mod").read_text()
PROGRAMS = ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager")


def required(module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)$", GO_MOD, flags=re.M)
    assert match, module
    return match[1]


def test_python_starts_the_release_that_go_mod_pins():
    assert required("k8s.io/kubernetes") == control_plane.KUBERNETES_VERSION
    assert required("go.etcd.io/etcd/server/v3") == control_plane.ETCD_VERSION


def test_python_starts_the_kueue_that_its_go_mod_pins():
    from workload_operator.devcluster import kueue

    kueue_mod = (pathlib.Path(__file__).parents[2] / "tests" / "controlplane" / "kueue" / "go.mod").read_text()
    assert re.search(rf"^require sigs\.k8s\.io/kueue {re.escape(kueue.KUEUE_VERSION)}$", kueue_mod, flags=re.M)


def test_every_staging_module_is_replaced_by_the_matching_release():
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local folders, which a
    # module download does not have: v1.X.Y's staging modules are published as v0.X.Y.
    staging = f"v0.{control_plane.KUBERNETES_VERSION.removeprefix('v1.')}"
    replaced = dict(re.findall(r"^\s*(k8s\.io/\S+) => \1 (v\S+)$", GO_MOD, flags=re.M))
    assert {"k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go", "k8s.io/kube-scheduler"} <= set(replaced)
    assert set(replaced.values()) == {staging}


def make_programs(folder: pathlib.Path, names=PROGRAMS) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    return folder


@pytest.fixture()
def clean_environment(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("KUBEBUILDER_ASSETS", "TEST_ASSET_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WORKLOAD_CONTROLPLANE_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_the_built_binaries_are_found_in_the_cache_folder_of_the_pinned_release(clean_environment):
    assert control_plane.binaries() is None
    built = control_plane.built_folder()
    assert built == clean_environment / "cache" / f"kubernetes-{control_plane.KUBERNETES_VERSION}-etcd-{control_plane.ETCD_VERSION}"
    make_programs(built, PROGRAMS[:3])
    assert control_plane.binaries() is None, "a build missing one program is not used"
    make_programs(built)
    found = control_plane.binaries()
    assert found == control_plane.Binaries(built / "kube-apiserver", built / "etcd", built / "kube-scheduler",
                                           built / "kube-controller-manager")


def test_envtest_assets_come_first_and_may_lack_the_scheduler_and_controller_manager(clean_environment, monkeypatch):
    make_programs(control_plane.built_folder())
    assets = make_programs(clean_environment / "envtest", ("kube-apiserver", "etcd"))
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    assert control_plane.binaries() == control_plane.Binaries(assets / "kube-apiserver", assets / "etcd")
    monkeypatch.setenv("TEST_ASSET_ETCD", str(assets / "missing"))
    with pytest.raises(FileNotFoundError, match="missing is not an executable"):
        control_plane.binaries()
