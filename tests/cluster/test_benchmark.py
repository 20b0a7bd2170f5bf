"""The benchmark's kubeconfig mode against the real API server: every mode runs to the end, with the same
API traffic per workload as on the emulated API (the CRD's CEL rules and schema are in force here)."""

from __future__ import annotations

import pytest

from benchmarks.apis import proxied_api
from benchmarks.lifecycle import PATHS, one_run
from tests.integration.test_benchmark import expected_others

SIZE = 2


@pytest.mark.parametrize("mode", list(PATHS))
async def test_the_benchmark_runs_every_mode_on_a_real_api_server(mode, kubeconfig, crd_installed):
    async with proxied_api(kubeconfig) as api:
        run = await one_run(api, mode, SIZE, unrelated=2, timeout=120)

    assert run.transitions == SIZE * len(PATHS[mode])
    assert run.status_writes == run.transitions
    assert run.others == expected_others(mode, SIZE)
