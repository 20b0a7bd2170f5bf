"""The dashboard in a real browser (tests/browser.py), on the real control plane.

The dashboard runs as a user bound only to deploy/dashboard/clusterrole.yaml and shows the test's namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import kubernetes
import pytest
import yaml

from benchmarks.dashboard import count_shown, create_workloads, move
from tests.browser import WAIT_MS, fits_the_width, page, playwright, row, screenshot  # noqa: F401 (page: a fixture)
from tests.harness import DEADLINE, client_configuration
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.dashboard.server import AGENT, serving
from workload_operator.dev import load_examples, service_accounts
from workload_operator.devcluster import control_plane
from workload_operator.devcluster.kubelet import SimulatedKubelet
from workload_operator.kube import Kube

ROOT = pathlib.Path(__file__).parents[2]


@pytest.fixture()
def namespace() -> str:
    """A team's namespace, as the screenshots show it (a test's own all the same)."""
    return f"research-{uuid.uuid4().hex[:4]}"


@pytest.fixture()
async def dashboard(control_plane_started, kubeconfig, crd_installed, cluster) -> AsyncIterator[str]:
    """The dashboard of the test's namespace, as the dashboard's own RBAC-only user; its URL."""
    identity = kubeconfig
    if control_plane_started is not None:
        role = yaml.safe_load((ROOT / "deploy" / "dashboard" / "clusterrole.yaml").read_text())
        control_plane.grant(kubernetes.client.ApiClient(client_configuration(kubeconfig)), role,
                            control_plane.DASHBOARD_USER)
        identity = control_plane_started.kubeconfig_for(control_plane.DASHBOARD_USER)
    kube = Kube(kubernetes.client.ApiClient(client_configuration(identity)), AGENT)
    async with serving(kube, [cluster.namespace], port=0) as (_, url):
        yield url


@contextlib.asynccontextmanager
async def simulated_kubelet(kubeconfig: pathlib.Path) -> AsyncIterator[None]:
    """What `workload-operator dev` runs in place of a node: the examples' pods run, succeed, fail, serve."""
    kubelet = SimulatedKubelet(kubernetes.client.ApiClient(client_configuration(kubeconfig)))
    task = asyncio.create_task(kubelet.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def create_examples(cluster: Any) -> list[str]:
    examples = load_examples(ROOT / "examples")
    for namespace, account in service_accounts(examples):
        await cluster._create_unless_there(cluster.core.create_namespaced_service_account, cluster.namespace,
                                           {"metadata": {"name": account}})
    for example in examples:
        example["metadata"]["namespace"] = cluster.namespace
        await cluster._call(cluster.custom.create_namespaced_custom_object, GROUP, VERSION, cluster.namespace, PLURAL,
                            example)
    return [example["metadata"]["name"] for example in examples]


async def test_the_list_shows_the_examples_and_follows_them_without_a_reload(cluster, operator, dashboard, page,
                                                                            kubeconfig):
    await page.goto(dashboard)
    await playwright.expect(page.locator("[data-testid=live]")).to_have_attribute("data-status", "live")
    await page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    async with simulated_kubelet(kubeconfig):
        names = await create_examples(cluster)
        for name in names:
            await playwright.expect(row(page, name)).to_be_visible(timeout=WAIT_MS)
        # bad-lr fails after a few seconds; the services are still serving then: the README's picture.
        await playwright.expect(row(page, "bad-lr")).to_have_attribute("data-state", "failed", timeout=WAIT_MS)
        await playwright.expect(row(page, "llm")).to_have_attribute("data-state", "serving", timeout=WAIT_MS)
        await screenshot(page, "dashboard-list.png")
        await playwright.expect(row(page, "train-resnet")).to_have_attribute("data-state", "completed",
                                                                             timeout=WAIT_MS)
        await playwright.expect(page.locator("[data-testid=count][data-state=failed]")).to_have_text("1")
    assert await page.evaluate("window.loadedOnce") is True


async def test_a_workload_page_draws_both_attempts_of_a_re_queued_workload(cluster, operator, dashboard, page):
    await cluster.start_running("requeued")
    await cluster.pod_lost("requeued-1", "evicted")
    await cluster.wait_pod("requeued-2")
    await cluster.pod_running("requeued-2")
    await cluster.wait_state("requeued", "running")
    await cluster.wait_events("requeued", 4)

    await page.goto(f"{dashboard}#/workload/{cluster.namespace}/requeued")
    bands = page.locator("[data-testid=timeline] [data-testid=band]")
    await playwright.expect(bands).to_have_count(7, timeout=WAIT_MS)
    drawn = [(await band.get_attribute("data-state"), await band.get_attribute("data-attempt"))
             for band in await bands.all()]
    assert drawn == [("queued", "1"), ("preparing", "1"), ("running", "1"), ("orphaned", "1"), ("queued", "1"),
                     ("preparing", "2"), ("running", "2")]
    await playwright.expect(page.locator("[data-testid=pod]")).to_have_count(1)
    await playwright.expect(page.locator('[data-testid=pod][data-phase="Running"]')).to_have_count(1)
    await playwright.expect(page.locator("[data-testid=event]").first).to_be_visible()
    await screenshot(page, "dashboard-workload.png", height=1300)


async def test_the_filters_narrow_the_list_and_are_kept_in_the_address(cluster, dashboard, page):
    for name, spec in (("alpha", {}), ("beta", {}), ("server", {"type": "service", "port": 8000})):
        await cluster.create_workload(name, **spec)
    await cluster.patch_status("beta", [{"op": "add", "path": "/status", "value": {"state": "queued"}}])
    await page.goto(dashboard)
    await playwright.expect(page.locator("[data-testid=shown]")).to_contain_text("3 of 3")
    await page.select_option("[data-testid=filter-type]", "service")
    await playwright.expect(page.locator("[data-testid=row]")).to_have_count(1)
    await playwright.expect(row(page, "server")).to_be_visible()
    await page.select_option("[data-testid=filter-type]", "")
    await page.select_option("[data-testid=filter-state]", "queued")
    await playwright.expect(page.locator("[data-testid=row]")).to_have_count(1)
    await playwright.expect(row(page, "beta")).to_be_visible()
    assert "state=queued" in page.url
    await page.reload()  # the address keeps the view
    await playwright.expect(page.locator("[data-testid=row]")).to_have_count(1)
    await playwright.expect(row(page, "beta")).to_be_visible()


async def test_5000_workloads_are_listed_and_the_list_stays_live(cluster, dashboard, page, kubeconfig):
    kube = Kube(kubernetes.client.ApiClient(client_configuration(kubeconfig)))
    names = [f"w-{n:04d}" for n in range(5000)]
    await create_workloads(kube, cluster.namespace, names)
    await page.goto(dashboard)
    await playwright.expect(page.locator("[data-testid=shown]")).to_contain_text(
        re.compile(r"^5,?000 of 5,?000"), timeout=WAIT_MS * 4)
    assert await page.locator("[data-testid=row]").count() < 200, "only the rows in view are drawn"
    await move(kube, cluster.namespace, names[:300], "queued")
    await count_shown(page, "queued", 300, timeout=DEADLINE * 4)
    await page.fill("[data-testid=filter-text]", "w-4999")
    await playwright.expect(page.locator("[data-testid=row]")).to_have_count(1)
    await move(kube, cluster.namespace, ["w-4999"], "queued")
    await playwright.expect(row(page, "w-4999")).to_have_attribute("data-state", "queued", timeout=WAIT_MS)
    await kube.http.close()


def history_of(entries: int) -> list[dict[str, Any]]:
    """A valid path of ``entries`` transitions that loses its worker again and again (the oldest dropped)."""
    path = [(None, "queued")]
    loop = [("queued", "preparing"), ("preparing", "running"), ("running", "orphaned"), ("orphaned", "queued")]
    while len(path) < entries:
        path.append(loop[(len(path) - 1) % len(loop)])
    return [{**({"from": source} if source else {}), "to": target, "at": f"2026-12-06T10:{n // 60:02d}:{n % 60:02d}Z",
             "reason": "Requeued" if target == "queued" and source else "Scheduled"} for n, (source, target) in enumerate(path)]


async def test_odd_input_a_long_name_a_4_kib_result_and_a_full_history(cluster, dashboard, page):
    name = ".".join(["x" * 63] * 3) + "." + "y" * 61
    assert len(name) == 253
    await cluster.create_workload(name)
    history = history_of(50)
    await cluster.patch_status(name, [{"op": "add", "path": "/status", "value": {"state": "queued"}}])
    assert history[-1]["to"] == "preparing"
    await cluster.patch_status(name, [{"op": "add", "path": "/status", "value": {
        "state": "preparing", "history": history, "attempts": 13, "transitions": 60}}])
    await cluster.patch_status(name, [{"op": "add", "path": "/status", "value": {
        "state": "running", "history": [*history[1:], {"from": "preparing", "to": "running",
                                                      "at": "2026-12-06T11:00:00Z", "reason": "Started"}],
        "attempts": 13, "transitions": 61, "run": {"pod": "p", "result": "r" * 4096}}}])

    await page.goto(dashboard)
    await playwright.expect(row(page, name)).to_have_attribute("data-state", "running", timeout=WAIT_MS)
    assert await fits_the_width(page)
    await page.goto(f"{dashboard}#/workload/{cluster.namespace}/{name}")
    await playwright.expect(page.locator("[data-testid=timeline] [data-testid=band]")).to_have_count(50)
    await playwright.expect(page.locator("[data-testid=result]")).to_contain_text("r" * 100)
    assert await fits_the_width(page)
