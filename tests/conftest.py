"""Fixtures both operator tiers share: the audit recorder, and short backoffs for the tests."""

import logging

import pytest

from tests.harness import AuditRecorder


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
