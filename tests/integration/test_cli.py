"""`workload-operator run` says in one line what is missing before it starts."""

import asyncio

import kmock
import pytest

from tests.harness import write_kubeconfig
from workload_operator.devcluster.emulator import KubeAPIServer
from workload_operator.cli import main


def test_no_credentials(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert main(["run"]) == 1
    assert capsys.readouterr().err.startswith("workload-operator: no Kubernetes credentials")


def test_no_api_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")))
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("workload-operator: cannot reach the Kubernetes API at http://127.0.0.1:9") and err.count("\n") == 1


@pytest.mark.asyncio
async def test_no_crd(tmp_path, monkeypatch, capsys):
    async with KubeAPIServer() as api, kmock.Server(api):  # an API server without the Workload CRD
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", str(api.url).rstrip("/"))))
        assert await asyncio.to_thread(main, ["run"]) == 1
        await api.close_watches()
    err = capsys.readouterr().err
    assert "the Workload CRD is not installed" in err and "workload-operator crd | kubectl apply -f -" in err
