"""The benchmark against a real API server: through the counting proxy (--kubeconfig) every mode runs to the end,
with the same API traffic per workload as on the emulated API (the CRD's CEL rules and schema are in force here);
on a control plane of its own (--real) the same counts come from the audit log, and Kubernetes' Job controller
runs the same work (job-controller)."""

from __future__ import annotations

import pytest

from benchmarks import requests, server_profile
from benchmarks.apis import proxied_api, real_api
from benchmarks.lifecycle import JOB_CONTROLLER, PATHS, one_run
from tests.integration.test_benchmark import SINGLE_POD_MODES, expected_others
from workload_operator.devcluster import control_plane

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


needs_binaries = pytest.mark.skipif(control_plane.binaries() is None, reason="--real needs the control plane's binaries")


@needs_binaries
async def test_the_real_mode_reads_the_operators_requests_from_the_audit_log():
    """--real: a control plane of the run's own, no proxy; the same counts as through the proxy, from its audit log."""
    async with real_api() as api:
        run = await one_run(api, "batch", SIZE, unrelated=0, timeout=120)

    assert run.status_writes == run.transitions == SIZE * len(PATHS["batch"])
    assert run.others == expected_others("batch", SIZE)
    assert run.connections > 0 and run.restart_writes == 0
    assert run.server_cpu_seconds is not None and run.server_cpu_seconds > 0  # kube-apiserver's and etcd's, read


@needs_binaries
async def test_the_job_controller_runs_the_same_work_beside_it():
    async with real_api() as api:
        run = await one_run(api, JOB_CONTROLLER, SIZE, unrelated=0, timeout=120)

    assert run.pods == SIZE and run.transitions == SIZE * len(PATHS[JOB_CONTROLLER])
    assert run.others["POST pods"] == SIZE  # the Job controller made the pods; the driver played their kubelet
    assert run.status_writes >= SIZE and len(run.finish_latencies) == SIZE and run.connections >= 1


@needs_binaries
async def test_the_request_costs_on_a_control_plane_include_the_servers():
    """benchmarks.requests on a control plane of its own: each call's cost to kube-apiserver and etcd too."""
    measured, _ = await requests.run(None, calls=6, at_once=2)

    assert all(calls.server is not None and calls.server > 0 for calls in measured)
    assert "; kube-apiserver and etcd: " in requests.table(measured)


@needs_binaries
@pytest.mark.parametrize("write", server_profile.WRITES)
async def test_the_servers_profile_is_taken_while_the_writes_are_made(write):
    """benchmarks.server_profile: kube-apiserver's own CPU profile (gzipped pprof), over writes made meanwhile."""
    taken, writes, server_seconds = await server_profile.run(write, seconds=2, at_once=2)

    assert taken[:2] == b"\x1f\x8b" and len(taken) > 1000
    assert writes > 0 and server_seconds > 0
