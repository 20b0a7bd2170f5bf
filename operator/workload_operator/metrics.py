"""Prometheus metrics (served by `workload-operator run --metrics-port`; see docs/operations.md).

Counts and latencies are recorded where they happen; the number of workloads per state, the queue's
length and how long the oldest workload of each state has been in it are read from the operator's own
index (and the finished Workloads it holds outside kopf's) when scraped, so they cost no API call. Only the
leader has an index: a standby exports none of them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from workload_operator.lifecycle.states import TERMINAL, State
from workload_operator.lifecycle.status import WorkloadStatus

TRANSITIONS = Counter("workload_operator_transitions_total", "Lifecycle transitions recorded.", ["from_state", "to_state"])
DECISION_TO_WRITE = Histogram(
    "workload_operator_decision_to_write_seconds",
    "From a decision to its status write accepted by the API server (actions included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_ERRORS = Counter("workload_operator_api_errors_total", "API calls that failed, by operation and HTTP status.",
                     ["operation", "code"])
CONFLICTS = Counter("workload_operator_conflicts_total", "Status writes refused because the state had changed.")
LEADER = Gauge("workload_operator_leader", "1 if this replica holds the leader Lease and reconciles, 0 if it is a "
               "standby; identity is this replica's holderIdentity in the Lease.", ["identity"])


class WorkloadCollector(Collector):
    """Workloads by state, the queue's length and the oldest time in each state, from the current statuses.

    ``statuses`` is None until the operator has an index (a standby never does): then nothing is exported.
    """

    def __init__(self) -> None:
        self.statuses: Callable[[], Iterable[WorkloadStatus]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.statuses is None:
            return
        now = datetime.datetime.now(datetime.UTC)
        counts = {state: 0 for state in State}
        oldest = {state: 0.0 for state in State if state not in TERMINAL}
        for status in self.statuses():
            if status.state is None:
                continue
            counts[status.state] += 1
            if status.state in oldest and status.history:
                oldest[status.state] = max(oldest[status.state], (now - status.history[-1].at).total_seconds())
        by_state = GaugeMetricFamily("workload_operator_workloads", "Workloads by lifecycle state.", labels=["state"])
        for state, count in counts.items():
            by_state.add_metric([str(state)], count)
        yield by_state
        yield GaugeMetricFamily("workload_operator_queue_length", "Workloads waiting in the queue.",
                                value=counts[State.QUEUED])
        in_state = GaugeMetricFamily("workload_operator_oldest_in_state_seconds", "How long the workload longest in "
                                     "each non-terminal state has been in it (0: none is).", labels=["state"])
        for state, seconds in oldest.items():
            in_state.add_metric([str(state)], seconds)
        yield in_state


WORKLOADS = WorkloadCollector()
REGISTRY.register(WORKLOADS)


def serve(port: int) -> None:
    start_http_server(port)
