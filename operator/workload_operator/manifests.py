"""Pure builders of the objects the operator creates for a Workload."""

from __future__ import annotations

import copy
from typing import Any

from workload_operator import GROUP, KIND, VERSION
from workload_operator.lifecycle.decide import WorkloadView, headless_service_name, service_name
from workload_operator.lifecycle.gang import attempt_pod_names
from workload_operator.lifecycle.pods import MAIN_CONTAINER
from workload_operator.lifecycle.spec import WorkloadSpec, WorkloadType
from workload_operator.lifecycle.template import SHM_PATH, SHM_VOLUME, TERMINATION_MESSAGE_POLICY, main_container

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "workload-operator"
# The operator's pods: every one it made carries this label.
POD_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
WORKLOAD_UID_LABEL = f"{GROUP}/workload-uid"   # label values are at most 63 characters: a uid fits, a name may not
# A finished pod of a finished Workload, its result in the Workload's status: kept for its logs, no longer watched.
RETIRED_LABEL = f"{GROUP}/retired"
# The pods the operator watches (filtered by the API server): its own, until they are retired.
WATCHED_PODS = f"{POD_SELECTOR},!{RETIRED_LABEL}"
WORKLOAD_LABEL = f"{GROUP}/workload"
ATTEMPT_LABEL = f"{GROUP}/attempt"
INDEX_LABEL = f"{GROUP}/index"  # also an annotation, as the Job controller does with its completion index


def owner_reference(view: WorkloadView) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": view.name, "uid": view.uid,
        "controller": True, "blockOwnerDeletion": True,
    }


# Kueue's plain-pod integration (sigs.k8s.io/kueue pkg/controller/jobs/pod): a pod naming a LocalQueue is gated by
# Kueue's webhook until Kueue admits its group, whole. A group is an attempt: never reused (Kueue never admits a group
# it has finished), and not retriable (Kueue ends it once its pods have ended, instead of waiting for replacements).
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
KUEUE_GROUP_SIZE_ANNOTATION = "kueue.x-k8s.io/pod-group-total-count"
KUEUE_RETRIABLE_ANNOTATION = "kueue.x-k8s.io/retriable-in-group"


def pod_group_name(view: WorkloadView, attempt: int) -> str:
    """The attempt's Kueue pod group (also the name of Kueue's own Workload for it): a label value, so 63
    characters at most; a longer Workload name gives way to its uid."""
    name = f"{view.name}-{attempt}"
    return name if len(name) <= 63 else f"wl-{view.uid}-{attempt}"


def kueue_metadata(view: WorkloadView, spec: WorkloadSpec, attempt: int) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations that put the attempt's pods in a Kueue pod group ({} without a queueName)."""
    if spec.queue_name is None:
        return {}, {}
    return ({KUEUE_QUEUE_LABEL: spec.queue_name, KUEUE_GROUP_LABEL: pod_group_name(view, attempt)},
            {KUEUE_GROUP_SIZE_ANNOTATION: str(spec.replicas), KUEUE_RETRIABLE_ANNOTATION: "false"})


def pod_labels(view: WorkloadView, attempt: int, index: int = 0) -> dict[str, str]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY, WORKLOAD_UID_LABEL: view.uid, ATTEMPT_LABEL: str(attempt),
              INDEX_LABEL: str(index)}
    if len(view.name) <= 63:  # a valid label value; longer names are found through the uid label
        labels[WORKLOAD_LABEL] = view.name
    return labels


def _main_container(spec: WorkloadSpec) -> dict[str, Any]:
    """The container named main: the template's own, filled from the short fields (the README's table)."""
    template = spec.template or {}
    container = copy.deepcopy(main_container(template) or {"name": MAIN_CONTAINER})
    # The last log lines become the termination message when the container fails without writing one.
    container["terminationMessagePolicy"] = TERMINATION_MESSAGE_POLICY
    if spec.image:
        container["image"] = spec.image
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    if spec.env:
        container["env"] = [*(container.get("env") or []), *({"name": e.name, "value": e.value} for e in spec.env)]
    # Quantities as strings, the form the API server itself returns (the official client insists on it).
    for kind, amounts in spec.resources.model_dump().items():
        if amounts:
            container["resources"] = resources = dict(container.get("resources") or {})
            resources[kind] = {**(resources.get(kind) or {}), **{name: str(q) for name, q in amounts.items()}}
    if spec.type is WorkloadType.SERVICE and spec.port is not None:
        if not any(p.get("containerPort") == spec.port for p in container.get("ports") or []):
            container["ports"] = [*(container.get("ports") or []), {"name": "http", "containerPort": spec.port}]
        if "readinessProbe" not in container:
            container["readinessProbe"] = {"httpGet": {"path": spec.readiness_path or "/", "port": spec.port}}
    return container


RENDEZVOUS_PORT = 29500  # torch.distributed's default


def hostname(index: int) -> str:
    """The hostname of a gang's pod of ``index``: ``worker-<index>.<headless service>`` is its DNS name."""
    return f"worker-{index}"


def rendezvous_host(view: WorkloadView) -> str:
    """Where the gang's pod of index 0 answers, by DNS, from the others (its headless Service's record)."""
    return f"{hostname(0)}.{headless_service_name(view)}.{view.namespace}.svc"


def rendezvous_env(view: WorkloadView, spec: WorkloadSpec, index: int, port: str) -> dict[str, str]:
    """What a launcher in a gang's pod reads to find the others: torchrun's own options (PET_*), the
    torch.distributed env:// variables for one process per pod, and the operator's names for the same."""
    size, master = str(spec.replicas), rendezvous_host(view)
    return {
        "PET_NNODES": size, "PET_NODE_RANK": str(index), "PET_MASTER_ADDR": master, "PET_MASTER_PORT": port,
        "MASTER_ADDR": master, "MASTER_PORT": port, "WORLD_SIZE": size, "RANK": str(index),
        "WORKLOAD_REPLICAS": size, "WORKLOAD_INDEX": str(index),
    }


def pod_manifest(view: WorkloadView, spec: WorkloadSpec, attempt: int, index: int = 0) -> dict[str, Any]:
    template = spec.template or {}
    pod_spec = copy.deepcopy(template.get("spec") or {})
    containers = pod_spec.get("containers") or []
    main = _main_container(spec)
    if spec.replicas > 1:
        # The user's own variables of the same names win (they come from the spec, ours from a convention); a port
        # set in one of torchrun's or torch's names serves for both.
        own = {e.get("name"): e.get("value") for e in main.get("env") or []}
        port = own.get("PET_MASTER_PORT") or own.get("MASTER_PORT") or str(RENDEZVOUS_PORT)
        main["env"] = [*({"name": k, "value": v} for k, v in rendezvous_env(view, spec, index, port).items() if k not in own),
                       *(main.get("env") or [])]
        pod_spec["hostname"], pod_spec["subdomain"] = hostname(index), headless_service_name(view)
    if any(c.get("name") == MAIN_CONTAINER for c in containers):
        containers = [main if c.get("name") == MAIN_CONTAINER else c for c in containers]
    else:
        containers = [main, *containers]
    pod_spec["containers"] = containers
    if spec.shm_size is not None:
        pod_spec["volumes"] = [*(pod_spec.get("volumes") or []),
                               {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": str(spec.shm_size)}}]
        for container in [*(pod_spec.get("initContainers") or []), *containers]:
            container["volumeMounts"] = [*(container.get("volumeMounts") or []), {"name": SHM_VOLUME, "mountPath": SHM_PATH}]
    # The operator's own parts come last, so nothing in the template replaces them.
    pod_spec["restartPolicy"] = "Never"
    pod_spec["automountServiceAccountToken"] = spec.automount_service_account_token
    metadata = template.get("metadata") or {}
    kueue_labels, kueue_annotations = kueue_metadata(view, spec, attempt)
    annotations = {**(metadata.get("annotations") or {}), **({INDEX_LABEL: str(index)} if spec.replicas > 1 else {}),
                   **kueue_annotations}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": attempt_pod_names(view.name, attempt, spec.replicas)[index],
            "namespace": view.namespace,
            "labels": {**(metadata.get("labels") or {}), **pod_labels(view, attempt, index), **kueue_labels},
            **({"annotations": annotations} if annotations else {}),
            "ownerReferences": [owner_reference(view)],
        },
        "spec": {"restartPolicy": pod_spec.pop("restartPolicy"),
                 "automountServiceAccountToken": pod_spec.pop("automountServiceAccountToken"),
                 "containers": pod_spec.pop("containers"), **pod_spec},
    }


def _service(view: WorkloadView, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": view.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, WORKLOAD_UID_LABEL: view.uid},
            "ownerReferences": [owner_reference(view)],
        },
        "spec": spec,
    }


def service_manifest(view: WorkloadView, spec: WorkloadSpec) -> dict[str, Any]:
    """A ClusterIP Service in front of whichever pod the workload runs now (selected by the workload's uid);
    in a gang, its pod of index 0."""
    selector = {WORKLOAD_UID_LABEL: view.uid, **({INDEX_LABEL: "0"} if spec.replicas > 1 else {})}
    return _service(view, service_name(view), {
        "type": "ClusterIP", "selector": selector,
        "ports": [{"name": "http", "port": spec.port, "targetPort": spec.port}],
    })


def headless_service_manifest(view: WorkloadView) -> dict[str, Any]:
    """The headless Service that gives each pod of a gang a DNS name, ``<hostname>.<service>.<namespace>.svc``,
    as soon as it has an IP: the pods find each other before any is Ready (the rendezvous comes first)."""
    return _service(view, headless_service_name(view), {
        "clusterIP": "None", "selector": {WORKLOAD_UID_LABEL: view.uid}, "publishNotReadyAddresses": True,
    })
