"""Prometheus metrics (served by `workload-operator run --metrics-port`; see docs/operations.md).

Counts and latencies are recorded where they happen; the number of workloads per state and the
queue's length are read from the operator's own index when scraped, so they cost no API call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from workload_operator.lifecycle.states import State

TRANSITIONS = Counter("workload_operator_transitions_total", "Lifecycle transitions recorded.", ["from_state", "to_state"])
DECISION_TO_WRITE = Histogram(
    "workload_operator_decision_to_write_seconds",
    "From a decision to its status write accepted by the API server (actions included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_ERRORS = Counter("workload_operator_api_errors_total", "API calls that failed, by operation and HTTP status.",
                     ["operation", "code"])
CONFLICTS = Counter("workload_operator_conflicts_total", "Status writes refused because the state had changed.")


class WorkloadCollector(Collector):
    """Workloads by state and the queue's length, from a function returning the current states."""

    def __init__(self) -> None:
        self.states: Callable[[], Iterable[State | None]] = lambda: ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = {state: 0 for state in State}
        for state in self.states():
            if state is not None:
                counts[state] += 1
        by_state = GaugeMetricFamily("workload_operator_workloads", "Workloads by lifecycle state.", labels=["state"])
        for state, count in counts.items():
            by_state.add_metric([str(state)], count)
        yield by_state
        yield GaugeMetricFamily("workload_operator_queue_length", "Workloads waiting in the queue.",
                                value=counts[State.QUEUED])


WORKLOADS = WorkloadCollector()
REGISTRY.register(WORKLOADS)


def serve(port: int) -> None:
    start_http_server(port)
