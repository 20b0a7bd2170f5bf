"""python -m benchmarks.kopf_floor --namespace NS: kopf alone, set up as the operator sets it up.

The same watches (Workloads; pods by the operator's label selector), the same two indexes and the same
settings (no progress or diff-base storage, no Events of kopf's, the collector's threshold), but index
functions and handlers that do nothing. ``python -m benchmarks.lifecycle --modes kopf-floor`` runs it while
its driver makes the operator's writes itself, so that the row's CPU and memory are what kopf costs to
receive and dispatch a lifecycle's watch events: the floor under the operator's own figures.
"""

from __future__ import annotations

import argparse
import gc
import logging
from typing import Any

import kopf

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.cli import KOPF_OBJECTS_LOGGER
from workload_operator.handlers import GC_THRESHOLD, OUR_PODS, NoDiffBase
from workload_operator.kube import Kube
from workload_operator.manifests import POD_SELECTOR

registry = kopf.OperatorRegistry()  # not kopf's default one, which importing the operator's handlers fills


@kopf.on.login(registry=registry)
def on_login(**_: Any) -> kopf.ConnectionInfo:
    return Kube.from_environment().connection_info()


@kopf.on.startup(registry=registry)
def on_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False
    settings.watching.label_selectors["v1", "pods"] = POD_SELECTOR
    gc.set_threshold(GC_THRESHOLD, 10, 10)


@kopf.index(GROUP, VERSION, PLURAL, registry=registry)
def workloads_by_uid(uid: str, **_: Any) -> dict[str, None]:
    return {uid: None}


@kopf.index("v1", "pods", labels=OUR_PODS, registry=registry)
def pods_by_workload(uid: str, namespace: str, **_: Any) -> dict[tuple[str, str], None]:
    return {(namespace, uid): None}


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_workload_event(workloads_by_uid: kopf.Index, pods_by_workload: kopf.Index, **_: Any) -> None:
    pass


@kopf.on.event("v1", "pods", labels=OUR_PODS, registry=registry)
async def on_pod_event(workloads_by_uid: kopf.Index, pods_by_workload: kopf.Index, **_: Any) -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kopf_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    args = parser.parse_args()
    kopf.configure(verbose=False)
    logging.getLogger(KOPF_OBJECTS_LOGGER).setLevel(logging.WARNING)  # as `workload-operator run` sets it
    kopf.run(registry=registry, standalone=True, namespaces=[args.namespace], liveness_endpoint=None)


if __name__ == "__main__":
    main()
