"""Gangs on the emulated tier: the shared scenarios (tests/gangs.py), and the simulated kubelet that
`workload-operator dev` runs playing each pod of a gang on its own."""

import asyncio

import pytest

from tests.gangs import *  # noqa: F403  (the shared scenarios run on this tier too)
from tests.gangs import HAPPY, names, pods_of
from tests.harness import Cluster, assert_valid_history

pytestmark = pytest.mark.usefixtures("operator")


async def test_the_simulated_kubelet_plays_every_pod_of_a_gang(cluster: Cluster, kubelet, status_writes):
    quick = [{"name": "SIMULATE_RUN_SECONDS", "value": "0.2"}]
    await cluster.create_workload("sim", replicas=3, env=quick)
    await cluster.create_workload("sim-bad", replicas=3, env=[*quick, {"name": "SIMULATE_EXIT_CODE", "value": "3"}])
    await cluster.create_workload("sim-web", replicas=2, type="service", port=8080)
    done, bad, web = await asyncio.gather(cluster.wait_state("sim", "completed"), cluster.wait_state("sim-bad", "failed"),
                                          cluster.wait_state("sim-web", "serving"))
    assert assert_valid_history(done) == HAPPY and status_writes("sim") == len(HAPPY)
    assert done["status"]["run"]["result"] == {"simulated": True}
    assert {p["status"]["phase"] for p in (await pods_of(cluster, "sim")).values()} == {"Succeeded"}
    assert bad["status"]["reason"] == "ExitCode" and bad["status"]["message"].startswith("pod sim-bad-1-")
    assert web["status"]["podsReady"] == "2/2"
    assert set(await pods_of(cluster, "sim-web")) == set(names("sim-web", 1, 2))
