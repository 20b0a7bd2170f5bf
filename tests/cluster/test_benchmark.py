"""The benchmark's kubeconfig mode against the real API server: every mode runs to the end, with the same
API traffic per workload as on the emulated API (the CRD's CEL rules and schema are in force here)."""

from __future__ import annotations

import pytest

from benchmarks.apis import proxied_api
from benchmarks.lifecycle import PATHS, one_run
from tests.integration.test_benchmark import SINGLE_POD_MODES, expected_others

SIZE = 2
REPLICAS = 3


@pytest.mark.parametrize("mode", SINGLE_POD_MODES)
async def test_the_benchmark_runs_every_mode_on_a_real_api_server(mode, kubeconfig, crd_installed):
    async with proxied_api(kubeconfig) as api:
        run = await one_run(api, mode, SIZE, unrelated=2, timeout=120)

    assert run.transitions == SIZE * len(PATHS[mode])
    assert run.status_writes == run.transitions
    assert run.others == expected_others(mode, SIZE)


async def test_the_benchmark_runs_gangs_on_a_real_api_server(kubeconfig, crd_installed):
    """Gangs of 3 pods: their pods' hostnames and subdomain, and the headless Service, through the real schema."""
    async with proxied_api(kubeconfig) as api:
        run = await one_run(api, "gang", SIZE, unrelated=2, timeout=120, replicas=REPLICAS)

    assert run.pods == SIZE * REPLICAS
    assert run.status_writes == run.transitions == SIZE * len(PATHS["gang"])
    assert run.others == expected_others("gang", SIZE, REPLICAS)
