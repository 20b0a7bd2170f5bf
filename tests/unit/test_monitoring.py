"""deploy/monitoring/: the alerts pass `promtool check rules` and `promtool test rules`, and they and the
Grafana dashboard name only metrics the operator exports.

promtool comes with Debian's `prometheus` package; .ci/run installs it. Without it these tests skip, unless
WORKLOAD_TEST_REQUIRE_PROMTOOL is set (CI sets it), when they fail.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.unit.test_deploy import container, the
from workload_operator import metrics

MONITORING = pathlib.Path(__file__).parents[2] / "deploy" / "monitoring"
JOB = "workload-operator"
# Series Prometheus itself makes for every scrape target, which the alerts may use too.
SCRAPE_SERIES = {"up"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                "group_right", "inf", "nan"}


def promtool() -> str:
    """The promtool binary, or a skip (a failure when WORKLOAD_TEST_REQUIRE_PROMTOOL is set: CI must have it)."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("WORKLOAD_TEST_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is not installed, and WORKLOAD_TEST_REQUIRE_PROMTOOL says it must be (.ci/run)")
        pytest.skip("promtool is not installed (apt-get install prometheus; .ci/run does)")
    return found


def run_promtool(*args: str, cwd: pathlib.Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)


def rule_groups() -> dict[str, Any]:
    manifest = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert manifest["kind"] == "PrometheusRule"
    return manifest["spec"]


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_groups()["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "dashboard.json").read_text())


def dashboard_queries() -> Iterator[tuple[str, str]]:
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (function and aggregation names, label names, keywords and
    Grafana's variables left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                        # strings
    text = re.sub(r"\[[^\]]*\]", "", text)                                    # ranges: [5m], [$__rate_interval]
    text = re.sub(r"\{[^}]*\}", "", text)                                     # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\w+", "", text)                                         # Grafana variables
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    return {name for name in names if name.lower() not in PROMQL_WORDS}


@pytest.mark.parametrize(("expr", "expected"), [
    ('sum by (state) (workload_operator_workloads{job="x", state=~"a|b"})', {"workload_operator_workloads"}),
    ("histogram_quantile(0.9, sum by (le) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
    ("a > 0 and on() (sum(increase(b[30m])) or vector(0)) == 0", {"a", "b"}),
    ('absent(up{job="x"} == 1)', {"up"}),
])
def test_metric_names_are_read_off_queries(expr, expected):
    assert metric_names(expr) == expected


def exported() -> set[str]:
    """Every series name the operator's /metrics can show: its own metrics and the Python client's defaults."""
    previous, metrics.WORKLOADS.statuses = metrics.WORKLOADS.statuses, list  # as on the leader: an index
    try:
        families = list(REGISTRY.collect())
    finally:
        metrics.WORKLOADS.statuses = previous
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created"), "info": ("_info",)}
    names = set()
    for family in families:
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def test_the_dashboard_and_the_alerts_name_only_exported_metrics():
    known = exported() | SCRAPE_SERIES
    used = [(title, expr, name) for title, expr in dashboard_queries() for name in metric_names(expr)]
    used += [(rule["alert"], rule["expr"], name) for rule in alerts() for name in metric_names(rule["expr"])]
    unknown = [f"{where}: {name} in {expr}" for where, expr, name in used if name not in known]
    assert not unknown, "queries name metrics the operator does not export:\n" + "\n".join(unknown)
    assert {"workload_operator_leader", "workload_operator_oldest_in_state_seconds",
            "workload_operator_queue_length"} <= {name for _, _, name in used}


def test_every_query_selects_the_operators_job():
    for where, expr in [*dashboard_queries(), *((rule["alert"], rule["expr"]) for rule in alerts())]:
        selectors = re.findall(r"\b[a-z_:]+\{([^}]*)\}", expr)
        assert selectors and all(f'job="{JOB}"' in selector for selector in selectors), (where, expr)


def test_the_dashboard_covers_what_on_call_needs():
    queries = " ".join(expr for _, expr in dashboard_queries())
    for metric in ("workload_operator_workloads", "workload_operator_transitions_total",
                   "workload_operator_queue_length", "workload_operator_oldest_in_state_seconds",
                   "workload_operator_decision_to_write_seconds_bucket", "workload_operator_api_errors_total",
                   "workload_operator_conflicts_total", "workload_operator_leader"):
        assert metric in queries, metric
    assert {var["name"] for var in dashboard()["templating"]["list"]} == {"datasource"}
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_the_pod_monitor_scrapes_the_deployments_metrics_port_as_the_job_the_queries_use():
    monitor = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text())["spec"]
    labels = the("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels[monitor["jobLabel"]] == JOB
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["podMetricsEndpoints"]
    assert endpoint["port"] in {port["name"] for port in container()["ports"]}


def test_the_monitoring_kustomization_lists_its_files():
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"]) | {f for g in kustomization["configMapGenerator"] for f in g["files"]}
    assert listed == {"podmonitor.yaml", "prometheusrule.yaml", "dashboard.json"}


def test_promtool_check_rules(tmp_path):
    rules = tmp_path / "workload-operator.rules.yaml"
    rules.write_text(yaml.safe_dump(rule_groups()))
    result = run_promtool("check", "rules", rules.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboards_queries_are_valid_promql(tmp_path):
    """promtool parses every query as a recording rule (Grafana's $__rate_interval as 5m)."""
    rules = [{"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
             for i, (_, expr) in enumerate(dashboard_queries())]
    (tmp_path / "dashboard.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", "dashboard.rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def render(template: str, labels: dict[str, str]) -> str:
    """Prometheus' alert templating, as far as the rules use it: {{ $labels.name }}."""
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template)


def test_promtool_test_rules(tmp_path):
    (tmp_path / "workload-operator.rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    tests = yaml.safe_load((MONITORING / "rules.test.yaml").read_text())
    annotations = {rule["alert"]: rule.get("annotations", {}) for rule in alerts()}
    fired = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            for alert in check["exp_alerts"]:
                fired.add(check["alertname"])
                alert["exp_annotations"] = {key: render(value, alert["exp_labels"])
                                            for key, value in annotations[check["alertname"]].items()}
    assert fired == set(annotations), "every alert has a case where it fires"
    (tmp_path / "rules.test.yaml").write_text(yaml.safe_dump(tests))
    result = run_promtool("test", "rules", "rules.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
