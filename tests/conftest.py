"""Fixtures both operator tiers share: the audit recorder, short backoffs for the tests, a simulated kubelet."""

import asyncio
import logging

import kubernetes
import pytest

from tests.harness import AuditRecorder
from workload_operator.devcluster.kubelet import SimulatedKubelet


@pytest.fixture()
def audit():
    recorder = AuditRecorder()
    logger = logging.getLogger("workload_operator.audit")
    logger.addHandler(recorder)
    yield recorder
    logger.removeHandler(recorder)


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch):
    """Seconds, not minutes, between a lost worker and its next attempt (the default is 10 s doubling to 5 min)."""
    monkeypatch.setenv("WORKLOAD_OPERATOR_BACKOFF_SECONDS", "0.2")
    monkeypatch.setenv("WORKLOAD_OPERATOR_BACKOFF_CAP_SECONDS", "1")


@pytest.fixture()
async def kubelet(kubeconfig):
    """The simulated kubelet (devcluster/kubelet.py) playing the operator's pods, from the tier's kubeconfig."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    task = asyncio.create_task(SimulatedKubelet(kubernetes.client.ApiClient(configuration)).run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(autouse=True)
def short_force_delete(monkeypatch):
    """A pod stuck terminating is deleted with grace 0 one second after its grace period, not thirty."""
    monkeypatch.setenv("WORKLOAD_OPERATOR_FORCE_DELETE_AFTER_SECONDS", "1")
