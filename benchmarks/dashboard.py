"""python -m benchmarks.dashboard [--sizes 1000,5000] [--burst 1000]

The dashboard with N Workloads, on the project's own control plane (tests/controlplane/build.sh builds it), in
Debian's Chromium (/usr/bin/chromium) at 1366×768, and prints a table with a row per N:

- the dashboard's own process (``workload-operator dashboard``): seconds from its start to every collection
  listed, peak RSS, and the size of the list's snapshot sent to a page;
- the page: from navigation to the list showing "N of N" (the snapshot fetched, parsed and drawn), its main
  thread's busy time (Chromium's TaskDuration) and JS heap;
- staying live: ``--burst`` Workloads moved queued → preparing at once (the writes themselves take a while on
  this machine: "burst on screen" is from the first write to the page's count showing them all, next to how long
  the writes took); and one change at a time (p50 of 20, from the write to the page's count moving), next to
  the round trip of the write itself.

Every N gets a fresh control plane; the Workloads are created and queued by this driver (no operator runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import kubernetes

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster import control_plane
from workload_operator.kube import Kube

CHROMIUM = "/usr/bin/chromium"  # Debian's; no browser is downloaded
# As a person's browser, less what this machine's closed network would only make fail.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CONCURRENCY = 16  # the driver's writes in flight at once
NAMESPACE = "bench"
MERGE_PATCH = "application/merge-patch+json"


def collection(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


async def at_most(concurrency: int, work: list[Any]) -> None:
    """Await the coroutines in ``work``, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(coroutine: Any) -> None:
        async with gate:
            await coroutine

    await asyncio.gather(*(one(coroutine) for coroutine in work))


async def create_workloads(kube: Kube, namespace: str, names: list[str]) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload", "spec": {"image": "python:3.12"}}
    await at_most(CONCURRENCY, [kube.http.request("POST", collection(namespace), {**body, "metadata": {"name": name}})
                                for name in names])


async def set_state(kube: Kube, namespace: str, name: str, state: str) -> None:
    await kube.http.request("PATCH", f"{collection(namespace)}/{name}/status", {"status": {"state": state}},
                            content_type=MERGE_PATCH)


async def move(kube: Kube, namespace: str, names: list[str], state: str) -> None:
    await at_most(CONCURRENCY, [set_state(kube, namespace, name, state) for name in names])


async def count_shown(page: Any, state: str, expected: int, timeout: float = 300) -> None:
    """Wait until the page's count of ``state`` says ``expected`` (checked at every animation frame)."""
    await page.wait_for_function(
        "([state, expected]) => document.querySelector(`[data-testid=count][data-state=${state}]`)?.textContent"
        " === String(expected)", arg=[state, expected], timeout=timeout * 1000, polling="raf")


@dataclass
class Row:
    size: int
    synced_s: float = 0.0
    rss_mb: float = 0.0
    snapshot_kb: float = 0.0
    first_view_s: float = 0.0
    busy_s: float = 0.0
    heap_mb: float = 0.0
    burst: int = 0
    burst_writes_s: float = 0.0
    burst_shown_s: float = 0.0
    change_ms: float = 0.0
    write_ms: float = 0.0


@contextlib.asynccontextmanager
async def dashboard_process(kubeconfig: str) -> AsyncIterator[tuple[subprocess.Popen[str], str, float]]:
    """``workload-operator dashboard`` on a free port; its URL and the seconds until it had listed everything."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "workload_operator", "dashboard", "--port", "0"],
                               env={**os.environ, "KUBECONFIG": kubeconfig}, stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.to_thread(process.stdout.readline)
        url = re.search(r"http://\S+/", line).group(0)
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(url + "healthz") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.05)
        yield process, url, time.monotonic() - started
    finally:
        process.terminate()
        process.wait(30)


def peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def one_size(size: int, burst: int) -> Row:
    from playwright.async_api import async_playwright

    row = Row(size, burst=min(burst, size))
    binaries = control_plane.binaries()
    if binaries is None:
        raise SystemExit("no control plane: run tests/controlplane/build.sh first")
    with control_plane.real_control_plane(binaries) as plane:
        admin = plane.client()
        control_plane.install_crd(admin)
        kubernetes.client.CoreV1Api(admin).create_namespace({"metadata": {"name": NAMESPACE}})
        kube = Kube(admin)
        names = [f"workload-{n:05d}" for n in range(size)]
        await create_workloads(kube, NAMESPACE, names)
        await move(kube, NAMESPACE, names, "queued")
        async with dashboard_process(str(plane.kubeconfig)) as (process, url, row.synced_s), async_playwright() as p:
            async with aiohttp.ClientSession() as session, session.get(url + "api/list") as response:
                snapshot = b""
                async for chunk in response.content.iter_any():  # one message, however long its line
                    snapshot += chunk
                    if b"\n\n" in snapshot:
                        break
                row.snapshot_kb = len(snapshot.split(b"\n\n")[0]) / 1024
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("Performance.enable")
            started = time.monotonic()
            await page.goto(url)
            await page.wait_for_function("n => document.querySelector('[data-testid=shown]')?.textContent"
                                         ".startsWith(`${n} of ${n}`)", arg=size, timeout=300_000, polling="raf")
            row.first_view_s = time.monotonic() - started

            moving = names[:row.burst]
            started = time.monotonic()

            async def burst_writes() -> float:
                await move(kube, NAMESPACE, moving, "preparing")
                return time.monotonic() - started

            writes = asyncio.create_task(burst_writes())
            await count_shown(page, "preparing", row.burst)
            row.burst_shown_s = time.monotonic() - started
            row.burst_writes_s = await writes

            changes, writes_ms = [], []
            for n, name in enumerate(moving[:20], start=1):
                started = time.monotonic()
                await set_state(kube, NAMESPACE, name, "running")
                writes_ms.append((time.monotonic() - started) * 1000)
                await count_shown(page, "running", n)
                changes.append((time.monotonic() - started) * 1000)
            row.change_ms, row.write_ms = statistics.median(changes), statistics.median(writes_ms)
            metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
            row.busy_s, row.heap_mb = metrics["TaskDuration"], metrics["JSHeapUsedSize"] / 2**20
            row.rss_mb = peak_rss_mb(process.pid)
            await browser.close()
        await kube.http.close()
    return row


def table(rows: list[Row]) -> str:
    lines = ["| Workloads | dashboard listed in | dashboard peak RSS | snapshot | page shows all in | page busy (whole run) "
             "| page JS heap | burst moved | burst on screen (writes took) | one change on screen, p50 (its write) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.size:,} | {r.synced_s:.2f} s | {r.rss_mb:.0f} MB | {r.snapshot_kb:,.0f} kB "
                     f"| {r.first_view_s:.2f} s | {r.busy_s:.2f} s | {r.heap_mb:.1f} MB | {r.burst:,} "
                     f"| {r.burst_shown_s:.2f} s ({r.burst_writes_s:.2f} s) | {r.change_ms:.0f} ms ({r.write_ms:.0f} ms) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__.split("\n\n")[1])
    parser.add_argument("--sizes", default="1000,5000", help="numbers of Workloads, comma-separated")
    parser.add_argument("--burst", type=int, default=1000, help="Workloads moved at once")
    args = parser.parse_args(argv)
    rows = [asyncio.run(one_size(int(size), args.burst)) for size in args.sizes.split(",")]
    print(table(rows))


if __name__ == "__main__":
    main()
