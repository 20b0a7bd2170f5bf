"""The operator's Prometheus metrics, scraped over HTTP while it runs."""

import asyncio
import socket
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Cluster, Operator, wait_for
from tests.unit.test_monitoring import promtool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exposition(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = exposition(port)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture()
async def metrics_port(operator: Operator, monkeypatch):
    await operator.stop()
    port = free_port()
    monkeypatch.setenv("WORKLOAD_OPERATOR_METRICS_PORT", str(port))
    await operator.start()
    await wait_for(lambda: asyncio.to_thread(_answers, port), "the metrics endpoint")
    return port


def _answers(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False


async def test_metrics_count_transitions_states_latency_and_the_queue(cluster: Cluster, metrics_port: int):
    before = scrape(metrics_port)
    await cluster.create_workload("measured")
    await cluster.wait_pod("measured-1")
    await cluster.pod_exited("measured-1", 0)
    await cluster.wait_state("measured", "completed")
    await cluster.create_workload("second")
    await cluster.wait_state("second", "preparing")
    after = await asyncio.to_thread(scrape, metrics_port)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    for source, target in [("", "queued"), ("queued", "preparing"), ("preparing", "running"),
                           ("running", "collecting"), ("collecting", "completed")]:
        assert delta("workload_operator_transitions_total", from_state=source, to_state=target) >= 1, (source, target)
    assert after[("workload_operator_workloads", (("state", "completed"),))] == 1
    assert after[("workload_operator_workloads", (("state", "preparing"),))] == 1
    assert after[("workload_operator_queue_length", ())] == 0
    assert delta("workload_operator_decision_to_write_seconds_count") >= 7  # one per status write
    assert after[("workload_operator_oldest_in_state_seconds", (("state", "preparing"),))] >= 0
    assert after[("workload_operator_oldest_in_state_seconds", (("state", "running"),))] == 0  # none is
    assert not [key for key in after if key[0] == "workload_operator_oldest_in_state_seconds"
                and dict(key[1])["state"] in ("completed", "failed", "cancelled")], "terminal states have no age"


async def test_the_metrics_pass_promtool_check_metrics(cluster: Cluster, metrics_port: int):
    await cluster.create_workload("linted")
    await cluster.wait_state("linted", "preparing")
    text = await asyncio.to_thread(exposition, metrics_port)
    assert "workload_operator_oldest_in_state_seconds" in text
    result = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
