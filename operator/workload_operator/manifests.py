"""Pure builders of the objects the operator creates for a Workload."""

from __future__ import annotations

from typing import Any

from workload_operator import GROUP, KIND, VERSION
from workload_operator.lifecycle.decide import WorkloadView, pod_name, service_name
from workload_operator.lifecycle.pods import MAIN_CONTAINER
from workload_operator.lifecycle.spec import WorkloadSpec, WorkloadType

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "workload-operator"
# The operator watches only pods that carry this selector (filtered by the API server).
POD_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
WORKLOAD_UID_LABEL = f"{GROUP}/workload-uid"   # label values are at most 63 characters: a uid fits, a name may not
WORKLOAD_LABEL = f"{GROUP}/workload"
ATTEMPT_LABEL = f"{GROUP}/attempt"


def owner_reference(view: WorkloadView) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": view.name, "uid": view.uid,
        "controller": True, "blockOwnerDeletion": True,
    }


def pod_labels(view: WorkloadView, attempt: int) -> dict[str, str]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY, WORKLOAD_UID_LABEL: view.uid, ATTEMPT_LABEL: str(attempt)}
    if len(view.name) <= 63:  # a valid label value; longer names are found through the uid label
        labels[WORKLOAD_LABEL] = view.name
    return labels


def pod_manifest(view: WorkloadView, spec: WorkloadSpec, attempt: int) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": spec.image,
        # The last log lines become the termination message when the container fails without writing one.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    if spec.env:
        container["env"] = [{"name": e.name, "value": e.value} for e in spec.env]
    # Quantities as strings, the form the API server itself returns (the official client insists on it).
    resources = {kind: {name: str(q) for name, q in amounts.items()}
                 for kind, amounts in spec.resources.model_dump().items() if amounts}
    if resources:
        container["resources"] = resources
    if spec.type is WorkloadType.SERVICE and spec.port is not None:
        container["ports"] = [{"name": "http", "containerPort": spec.port}]
        container["readinessProbe"] = {"httpGet": {"path": spec.readiness_path, "port": spec.port}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(view.name, attempt),
            "namespace": view.namespace,
            "labels": pod_labels(view, attempt),
            "ownerReferences": [owner_reference(view)],
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": spec.automount_service_account_token,
            "containers": [container],
        },
    }


def service_manifest(view: WorkloadView, spec: WorkloadSpec) -> dict[str, Any]:
    """A ClusterIP Service in front of whichever pod the workload runs now (selected by the workload's uid)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(view),
            "namespace": view.namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, WORKLOAD_UID_LABEL: view.uid},
            "ownerReferences": [owner_reference(view)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {WORKLOAD_UID_LABEL: view.uid},
            "ports": [{"name": "http", "port": spec.port, "targetPort": spec.port}],
        },
    }
