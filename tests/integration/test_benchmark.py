"""The benchmark's own checks: it drives every mode to the end and counts the operator's requests right,
on the emulated API and through the counting proxy that stands in for a real server's request log.

No timing is asserted here (timings belong in `python -m benchmarks.lifecycle`'s table): what is checked
is the operator's API traffic per workload, which is exact, and that both ways of counting agree.
"""

from __future__ import annotations

import collections

import aiohttp
import pytest

from benchmarks.apis import emulated_api, proxied_api
from benchmarks.lifecycle import PATHS, one_run
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster.emulator import OPERATOR_AGENTS, KubeAPIServer

SIZE = 3
# Per workload, beyond the watches: one Event per transition, and what each lifecycle needs.
OTHER_REQUESTS = {
    "batch": {"PATCH workloads": 1, "POST pods": 1},                      # the finalizer; the pod
    "service": {"PATCH workloads": 1, "POST pods": 1, "POST services": 1, "DELETE pods": 1},  # stopping deletes it
    "worker-loss": {"PATCH workloads": 1, "POST pods": 2},                # the lost pod is gone already
}


def expected_others(mode: str, size: int = SIZE) -> collections.Counter[str]:
    per_workload = {**OTHER_REQUESTS[mode], "POST events": len(PATHS[mode])}
    return collections.Counter({what: count * size for what, count in per_workload.items()})


@pytest.mark.parametrize("mode", list(PATHS))
async def test_every_mode_costs_one_status_write_per_transition(mode):
    async with emulated_api() as api:
        run = await one_run(api, mode, SIZE, unrelated=0, timeout=60)

    assert run.status_writes == run.transitions  # one_run itself checks the transitions against the paths
    assert run.others == expected_others(mode)
    triggers = {"batch": 2, "service": 2, "worker-loss": 4}[mode]  # writes timed per workload
    assert len(run.latencies) == SIZE * triggers
    assert len(run.round_trips) == 200 and run.peak_rss_mb > 0


async def test_through_a_kubeconfig_the_proxy_counts_what_the_server_received(kube_api: KubeAPIServer, kubeconfig):
    """The kubeconfig mode, pointed at the emulator: the proxy's log and the server's own must agree."""
    async with proxied_api(kubeconfig) as api:
        first = len(kube_api.requests_since(0))
        run = await one_run(api, "batch", SIZE, unrelated=2, timeout=60)

    assert run.status_writes == run.transitions == SIZE * len(PATHS["batch"])
    assert run.others == expected_others("batch")
    # Every request the operator sent reached the server, through the proxy, with the proxy's credentials.
    received = [r for r in kube_api.requests_since(first) if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS)]
    assert {r.headers.get("Authorization") for r in received} == {"Bearer test-token"}
    logged = [(r.method, r.path) for r in api.log(0) if r.agent.startswith(OPERATOR_AGENTS)]
    assert collections.Counter((r.method.upper(), r.url.path) for r in received) == collections.Counter(logged)
    # A real server keeps what a run created: the run removed its Workloads, its pods and its namespace.
    async with aiohttp.ClientSession(str(kube_api.url)) as session:
        for path in (f"/apis/{GROUP}/{VERSION}/{PLURAL}", "/api/v1/pods", "/api/v1/services"):
            async with session.get(path) as response:
                assert (await response.json())["items"] == [], path
        async with session.get("/api/v1/namespaces") as response:
            assert not [n for n in (await response.json())["items"] if n["metadata"]["name"].startswith("bench-")]
