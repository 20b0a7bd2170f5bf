"""Gangs on the emulated tier: the shared scenarios (tests/gangs.py), and the simulated kubelet that
`workload-operator dev` runs playing each pod of a gang on its own."""

import asyncio

import pytest

from tests.gangs import *  # noqa: F403  (the shared scenarios run on this tier too)
from tests.gangs import HAPPY, names, pods_of
from tests.harness import Cluster, assert_valid_history, wait_for

pytestmark = pytest.mark.usefixtures("operator")


async def test_a_finished_gangs_pods_are_each_retired_once(cluster: Cluster, kube_api):
    """All four retired, and each pod's leaving the watch (its DELETED event) brings no second patch."""
    await cluster.create_workload("ret", replicas=4)
    await wait_for(lambda: pods_of(cluster, "ret"), "the gang's pods")
    for name in names("ret"):
        await cluster.pod_exited(name, 0)
    await cluster.wait_state("ret", "completed")

    def retires() -> list[str]:
        return [r.url.path.rsplit("/", 1)[-1] for r in list(kube_api)
                if r.method == "PATCH" and r.url.path.startswith(f"/api/v1/namespaces/{cluster.namespace}/pods/")
                and not r.url.path.endswith("/status")]  # the pods' own changes, made by the test's kubelet

    async def four() -> bool:
        return len(retires()) >= 4
    await wait_for(four, "four retirements")
    await cluster.create_workload("after")  # more events for the operator: nothing more for "ret"
    await cluster.wait_state("after", "preparing")
    assert sorted(retires()) == sorted(names("ret"))


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
