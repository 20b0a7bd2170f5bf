"""Kueue's manager beside the project's control plane (the cluster tier's Kueue scenarios).

``tests/controlplane/build.sh`` builds it from the ``sigs.k8s.io/kueue`` module (kueue/go.mod pins the version)
into the control plane's cache, with the CRDs and webhook configurations its module ships. It runs as it would
outside a cluster: its plain-pod integration on, its webhooks served on loopback with a certificate made for the
run (the API server is given that CA), leader election and its visibility server off, and only the namespaces
labelled ``KUEUE_NAMESPACE_LABEL`` managed (the webhooks fail closed: nothing else is touched by them).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from workload_operator.devcluster import control_plane

KUEUE_VERSION = "v0.17.0"  # tests/controlplane/kueue/go.mod (a unit test checks they agree)
KUEUE_NAMESPACE_LABEL = "workload-operator.test/kueue"  # a namespace with this label "true" is Kueue's to manage
# Kueue v0.17.0 reads its metrics server's certificate from this fixed path whenever it does not manage its own
# certificates (cmd/kueue/main.go), even with metrics off: a certificate made for the run is written there.
METRICS_CERTS = pathlib.Path("/etc/kueue/metrics/certs")
WEBHOOK_PREFIX = "kueue-"  # as Kueue's own kustomization names them


def kueue_folder() -> pathlib.Path | None:
    """Where build.sh put Kueue's manager, CRDs and webhooks, or None when it has not."""
    folder = control_plane.built_folder().parent / f"kueue-{KUEUE_VERSION}"
    return folder if (folder / "kueue").is_file() else None


def _webhooks(folder: pathlib.Path, url: str, ca: bytes) -> list[dict[str, Any]]:
    """Kueue's webhook configurations, calling the manager at ``url`` on loopback; those on pods and other
    objects of the cluster's own kinds only for the namespaces given to Kueue."""
    configurations = []
    for document in yaml.safe_load_all((folder / "webhooks.yaml").read_text()):
        if not document:
            continue
        configuration = copy.deepcopy(document)
        configuration["metadata"] = {"name": WEBHOOK_PREFIX + document["metadata"]["name"]}
        for webhook in configuration.get("webhooks") or []:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": url + path, "caBundle": base64.b64encode(ca).decode()}
            groups = {group for rule in webhook.get("rules") or [] for group in rule.get("apiGroups") or []}
            if not groups <= {"kueue.x-k8s.io"}:
                webhook["namespaceSelector"] = {"matchLabels": {KUEUE_NAMESPACE_LABEL: "true"}}
        configurations.append(configuration)
    return configurations


def _configuration(folder: pathlib.Path, webhook_port: int, health_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
        "namespace": "kueue-system",
        "leaderElection": {"leaderElect": False},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(folder)},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": {"matchLabels": {KUEUE_NAMESPACE_LABEL: "true"}},
        "integrations": {"frameworks": ["pod"]},
        "featureGates": {"VisibilityOnDemand": False},
    }


@contextlib.contextmanager
def running_kueue(plane: control_plane.ControlPlane) -> Iterator[None]:
    """Install Kueue's CRDs and webhooks on ``plane`` and run its manager until the block ends; then its webhooks
    go first (they fail closed), and the manager stops."""
    folder = kueue_folder()
    if folder is None:
        raise FileNotFoundError(f"no Kueue {KUEUE_VERSION} built: run tests/controlplane/build.sh")
    work = plane.folder / "kueue"
    work.mkdir(exist_ok=True)
    ca, certificate, key = control_plane.serving_certificate(work)
    try:
        METRICS_CERTS.mkdir(parents=True, exist_ok=True)
        for source in (certificate, key):
            (METRICS_CERTS / source.name).write_bytes(source.read_bytes())
    except PermissionError:
        raise PermissionError(f"Kueue {KUEUE_VERSION} reads its metrics certificate from {METRICS_CERTS}, whatever "
                              "its configuration says: run as root, or make that folder writable") from None
    client = plane.client()
    for path in sorted((folder / "crds").glob("*.yaml")):  # Kueue's own, whatever another run left of that name
        control_plane.put_crd(client, yaml.safe_load(path.read_text()))
    with contextlib.suppress(ApiException):
        kubernetes.client.CoreV1Api(client).create_namespace({"metadata": {"name": "kueue-system"}})
    webhook_port, health_port = control_plane.free_port(), control_plane.free_port()
    config = work / "config.yaml"
    config.write_text(json.dumps(_configuration(work, webhook_port, health_port)))
    process = plane.start("kueue", [str(folder / "kueue"), "--config", str(config),
                                    "--kubeconfig", str(plane.kubeconfig)])
    admission = kubernetes.client.AdmissionregistrationV1Api(client)
    calls = {"MutatingWebhookConfiguration": (admission.create_mutating_webhook_configuration,
                                              admission.delete_mutating_webhook_configuration),
             "ValidatingWebhookConfiguration": (admission.create_validating_webhook_configuration,
                                                admission.delete_validating_webhook_configuration)}
    configurations = _webhooks(folder, f"https://127.0.0.1:{webhook_port}", ca.read_bytes())
    try:
        control_plane.wait_ready(f"http://127.0.0.1:{health_port}/readyz", None, process, "kueue")
        for configuration in configurations:
            calls[configuration["kind"]][0](configuration)
        yield
    finally:
        for configuration in configurations:
            with contextlib.suppress(ApiException):
                calls[configuration["kind"]][1](configuration["metadata"]["name"])
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        client.close()
