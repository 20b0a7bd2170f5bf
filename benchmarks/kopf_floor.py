"""python -m benchmarks.kopf_floor --namespace NS [--watch-only]: the floors under the operator's costs.

Without ``--watch-only``: kopf alone, set up as the operator sets it up. The same watches (Workloads; pods by the
operator's label selector, retired ones left out), the same two indexes and the same settings (``configure_kopf``, the collector's
threshold, no per-event log line), but index functions and handlers that do nothing. With ``--watch-only``: no
kopf, the same two watches read with aiohttp, each event parsed and kept by uid, and nothing else: what receiving
the events costs in Python at all.

``python -m benchmarks.lifecycle --modes kopf-floor,watch-floor`` runs them while its driver makes the operator's
writes itself, so that those rows' CPU and memory are what the same watch events cost kopf, and the bare watches.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
from typing import Any

import aiohttp
import kopf

from workload_operator import GROUP, PLURAL, VERSION, manifests
from workload_operator.cli import KOPF_OBJECTS_LOGGER
from workload_operator.handlers import GC_THRESHOLD, OUR_PODS, configure_kopf, on_login
from workload_operator.kube import Kube

# The operator's watch of pods; an older package's (``benchmarks.lifecycle --baseline``) watched all of its pods.
WATCHED_PODS = getattr(manifests, "WATCHED_PODS", manifests.POD_SELECTOR)
registry = kopf.OperatorRegistry()  # not kopf's default one, which importing the operator's handlers fills
kopf.on.login(registry=registry)(on_login)  # the operator's own credentials


@kopf.on.startup(registry=registry)
def on_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure_kopf(settings)  # the operator's own settings of kopf


@kopf.index(GROUP, VERSION, PLURAL, registry=registry)
async def workloads_by_uid(uid: str, **_: Any) -> dict[str, None]:
    return {uid: None}


@kopf.index("v1", "pods", labels=OUR_PODS, registry=registry)
async def pods_by_workload(uid: str, namespace: str, **_: Any) -> dict[tuple[str, str], None]:
    return {(namespace, uid): None}


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_workload_event(workloads_by_uid: kopf.Index, pods_by_workload: kopf.Index, **_: Any) -> None:
    pass


@kopf.on.event("v1", "pods", labels=OUR_PODS, registry=registry)
async def on_pod_event(workloads_by_uid: kopf.Index, pods_by_workload: kopf.Index, **_: Any) -> None:
    pass


async def watch_only(namespace: str) -> None:
    """Until SIGTERM: list and watch the Workloads and the operator's pods, keeping the latest of each object."""
    info = Kube.from_environment().connection_info()  # the benchmark's kubeconfig: plain HTTP, no client certificate
    headers = {"User-Agent": "workload-operator/watch-floor",
               **({"Authorization": f"Bearer {info.token}"} if info.token else {})}
    async with aiohttp.ClientSession(info.server, headers=headers) as session:
        watches = asyncio.gather(
            watch(session, f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", {}),
            watch(session, f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": WATCHED_PODS}))
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, watches.cancel)
        try:
            await watches
        except asyncio.CancelledError:
            pass


async def watch(session: aiohttp.ClientSession, path: str, params: dict[str, str]) -> None:
    objects: dict[str, dict[str, Any]] = {}
    async with session.get(path, params=params) as response:
        listing = await response.json()
    objects.update((item["metadata"]["uid"], item) for item in listing["items"])
    version = listing["metadata"]["resourceVersion"]
    while True:  # resumed where it ended; a 410 Gone would end the benchmark's run, as the driver's watch does
        async with session.get(path, params={**params, "watch": "true", "resourceVersion": version},
                               timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event["object"]
                version = obj["metadata"]["resourceVersion"]
                if event["type"] == "DELETED":
                    objects.pop(obj["metadata"]["uid"], None)
                else:
                    objects[obj["metadata"]["uid"]] = obj


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kopf_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--watch-only", action="store_true", help="no kopf: the two watches alone")
    args = parser.parse_args()
    gc.set_threshold(GC_THRESHOLD, 10, 10)  # as the operator's start-up sets it
    if args.watch_only:
        asyncio.run(watch_only(args.namespace))
        return
    kopf.configure(verbose=False)
    logging.getLogger(KOPF_OBJECTS_LOGGER).setLevel(logging.WARNING)  # as `workload-operator run` sets it
    kopf.run(registry=registry, standalone=True, namespaces=[args.namespace], liveness_endpoint=None)


if __name__ == "__main__":
    main()
