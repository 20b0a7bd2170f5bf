"""The dynamic half of the RBAC check: run the operator, and check each request it sent against deploy/'s ClusterRole.

The scenarios drive every code path that makes an API call (pod and Service create/delete, status
and finalizer patches, Events, the re-read after a conflict, the TTL's delete), first with
``--namespace`` (the integration fixtures), then cluster-wide (the Deployment's default). Every request
whose User-Agent is the operator's (``workload-operator/``) or kopf's (``kopf/``) is mapped to what
the API server's authorizer is asked, the way its RequestInfo resolver does: (apiGroup,
resource[/subresource], verb), or a non-resource URL. Admission adds checks of its own on the
operator's creates (OwnerReferencesPermissionEnforcement), derived here from the request bodies.
Then: every check is allowed by the ClusterRole, and every rule of the ClusterRole was used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import json
from typing import Any

import aiohttp
import pytest
import yaml
from kopf.testing import KopfRunner

from tests.harness import Cluster, Operator, wait_for
from tests.integration.conftest import WORKLOAD_CRD
from tests.unit.test_deploy import Rule, cluster_role, granted, leader_election_role
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster.emulator import OPERATOR_AGENTS, ResourceSpec, parse_resource_path
from workload_operator.kube import Kube, user_agent
from workload_operator.leader import Elector, LeaseSettings

# The built-in ClusterRole system:discovery, bound to system:authenticated: the non-resource URLs every
# authenticated user (the operator's ServiceAccount too) may GET without any rule of ours.
DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/version", "/version/", "/healthz", "/livez", "/readyz",
                  "/openapi", "/openapi/*")
# Rules of the ClusterRole that no scenario here exercises, each with the reason it is still needed.
# None now: every rule is used below. Add a rule here only with the code path (an error path, say) that needs it.
UNEXERCISED: dict[Rule, str] = {}
METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclasses.dataclass(frozen=True)
class NonResource:
    """A request for a non-resource URL: RBAC checks the lowercase HTTP method on the path."""
    verb: str
    path: str


@dataclasses.dataclass(frozen=True)
class Check:
    """One authorization check the API server makes; ``why`` names the request that caused it."""
    what: Rule | NonResource
    why: str


def authorization(method: str, path: str, params: Any) -> Rule | NonResource:
    """What the API server's authorizer is asked for a request (k8s.io/apiserver's RequestInfoFactory)."""
    verb = METHOD_VERBS[method.upper()]
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts or parts[0] not in ("api", "apis"):
        return NonResource(method.lower(), path)
    prefix, parts = parts[0], parts[1:]
    if prefix == "apis":
        if len(parts) < 3:  # /apis, /apis/<group>, /apis/<group>/<version>: discovery
            return NonResource(method.lower(), path)
        group, parts = parts[0], parts[2:]
    else:
        if len(parts) < 2:  # /api, /api/v1: discovery
            return NonResource(method.lower(), path)
        group, parts = "", parts[1:]
    if parts[0] == "namespaces" and len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
        parts = parts[2:]  # /namespaces/<ns>/<resource>/...: the namespace is not part of the rule
    resource, name = parts[0], parts[1] if len(parts) > 1 else None
    if len(parts) > 2:
        resource = f"{resource}/{parts[2]}"
    if name is None and verb == "get":
        verb = "watch" if str(params.get("watch", "")).lower() in ("true", "1", "t") else "list"
    if name is None and verb == "delete":
        verb = "deletecollection"
    return group, resource, verb


@pytest.mark.parametrize(("method", "path", "params", "expected"), [
    ("GET", "/api", {}, NonResource("get", "/api")),
    ("GET", "/api/v1", {}, NonResource("get", "/api/v1")),
    ("GET", "/apis/ml.lifecycle.dev/v1alpha1", {}, NonResource("get", "/apis/ml.lifecycle.dev/v1alpha1")),
    ("GET", "/version", {}, NonResource("get", "/version")),
    ("POST", "/apis", {}, NonResource("post", "/apis")),
    ("GET", "/api/v1/namespaces", {}, ("", "namespaces", "list")),
    ("GET", "/api/v1/namespaces", {"watch": "true"}, ("", "namespaces", "watch")),
    ("GET", "/api/v1/namespaces/ml", {}, ("", "namespaces", "get")),
    ("PUT", "/api/v1/namespaces/ml/finalize", {}, ("", "namespaces/finalize", "update")),
    ("GET", "/api/v1/pods", {"labelSelector": "a=b"}, ("", "pods", "list")),
    ("GET", "/api/v1/namespaces/ml/pods", {"watch": "1"}, ("", "pods", "watch")),
    ("GET", "/api/v1/namespaces/ml/pods/p-1", {}, ("", "pods", "get")),
    ("PATCH", "/api/v1/namespaces/ml/pods/p-1/status", {}, ("", "pods/status", "patch")),
    ("POST", "/api/v1/namespaces/ml/events", {}, ("", "events", "create")),
    ("DELETE", "/api/v1/namespaces/ml/pods", {}, ("", "pods", "deletecollection")),
    ("PATCH", "/apis/ml.lifecycle.dev/v1alpha1/namespaces/ml/workloads/w/status", {},
     ("ml.lifecycle.dev", "workloads/status", "patch")),
    ("DELETE", "/apis/ml.lifecycle.dev/v1alpha1/namespaces/ml/workloads/w", {}, ("ml.lifecycle.dev", "workloads", "delete")),
    ("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {"watch": "true"},
     ("apiextensions.k8s.io", "customresourcedefinitions", "watch")),
])
def test_requests_map_to_what_rbac_authorizes(method, path, params, expected):
    assert authorization(method, path, params) == expected


def owner_plurals() -> dict[tuple[str, str], str]:
    """(group, kind) -> plural: the REST mapping admission uses to name an owner's resource."""
    manifest = yaml.safe_load(WORKLOAD_CRD.read_text())
    return {(manifest["spec"]["group"], manifest["spec"]["names"]["kind"]): manifest["spec"]["names"]["plural"]}


def admission_checks(request: Any, rule: Rule) -> list[Check]:
    """The checks OwnerReferencesPermissionEnforcement (k8s plugin/pkg/admission/gc) makes on a create that sets
    ownerReferences: delete on the object itself, and update on <owner>/finalizers for each blockOwnerDeletion."""
    group, resource, verb = rule
    if verb != "create" or not request.body:
        return []
    refs = (json.loads(request.body).get("metadata") or {}).get("ownerReferences") or []
    why = f"admission of POST {request.url.path}"
    checks = [Check((group, resource, "delete"), f"{why} (an ownerReference)")] if refs else []
    for ref in refs:
        if ref.get("blockOwnerDeletion"):
            owner_group = ref["apiVersion"].rpartition("/")[0]
            plural = owner_plurals()[owner_group, ref["kind"]]
            checks.append(Check((owner_group, f"{plural}/finalizers", "update"), f"{why} (blockOwnerDeletion)"))
    return checks


def checks_of(requests: list[Any]) -> list[Check]:
    """Every authorization check the operator's and kopf's requests cause."""
    checks = []
    for request in requests:
        if not request.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS):
            continue
        what = authorization(request.method, request.url.path, request.params)
        checks.append(Check(what, f"{request.headers['User-Agent']}: {request.method.upper()} {request.url.path_qs}"))
        if not isinstance(what, NonResource):
            checks.extend(admission_checks(request, what))
    return checks


def allowed(what: Rule | NonResource, grants: set[Rule]) -> bool:
    if isinstance(what, NonResource):
        return what.verb == "get" and any(fnmatch.fnmatchcase(what.path, url) for url in DISCOVERY_URLS)
    return what in grants


def refused(checks: list[Check], grants: set[Rule]) -> list[str]:
    return [f"{check.why} needs {check.what}" for check in checks if not allowed(check.what, grants)]


class ClusterwideOperator(Operator):
    """The operator as the Deployment runs it: every namespace (no --namespace)."""

    def __init__(self) -> None:
        super().__init__()

    async def start(self) -> None:
        assert self.runner is None
        self.runner = KopfRunner(["run", "-m", "workload_operator.handlers", "--standalone", "--all-namespaces",
                                  "--verbose"], timeout=30)
        await asyncio.to_thread(self.runner.__enter__)


@pytest.fixture()
async def kube_api(kube_api):
    """The emulator, also serving CustomResourceDefinitions (holding the Workload's) as every API server does:
    kopf's resource observer lists and watches them."""
    kube_api.register(ResourceSpec("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                                   "customresourcedefinition", namespaced=False, subresources=frozenset({"status"}),
                                   shortnames=("crd", "crds")))
    async with aiohttp.ClientSession() as session:
        url = f"{str(kube_api.url).rstrip('/')}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        async with session.post(url, json=yaml.safe_load(WORKLOAD_CRD.read_text())) as response:
            assert response.status == 201, await response.text()
    return kube_api


async def every_api_call(cluster: Cluster, kube_api) -> None:
    """Scenarios that make the operator use every API call it has (kube.py), in ``cluster.namespace``."""
    # The next status write is refused as stale (409): the operator re-reads the Workload (kube.get_workload).
    kube_api.inject_error(409, method="PATCH", resource="workloads", subresource="status", namespace=cluster.namespace)
    # A batch workload run to completion, then deleted by its TTL: finalizer add and remove, status writes,
    # Events, pod create, the finished pod's delete on release, the Workload's delete.
    await cluster.create_workload("train", ttlSecondsAfterFinished=1)
    await cluster.wait_pod("train-1")
    await cluster.pod_running("train-1")
    await cluster.wait_state("train", "running")
    await cluster.pod_exited("train-1", 0)
    await cluster.wait_gone("train")  # completed, then deleted by its TTL (times have whole seconds: maybe at once)
    stored = kube_api.objects[(kube_api.resource(GROUP, VERSION, PLURAL), cluster.namespace, "train")].history
    assert [dict(v.raw) for v in stored if v is not None][-1]["status"]["state"] == "completed"  # as it was deleted
    # A service, serving, then deleted: Service create, pod delete on stopping, Service delete on release.
    await cluster.create_workload("web", type="service", port=8080)
    await cluster.wait_pod("web-1")
    await cluster.pod_ready("web-1")
    await cluster.wait_state("web", "serving")
    await cluster.delete_workload("web")
    await cluster.wait_gone("web")
    # A batch workload cancelled while running: the pod's delete, kept as cancelled.
    await cluster.start_running("stop")
    await cluster.patch_spec("stop", cancel=True)
    await cluster.wait_state("stop", "cancelled")
    # A pod name taken by someone else's pod: the operator reads it (kube.create_pod on 409) and waits.
    await cluster.create_foreign_pod("clash-1")
    await cluster.create_workload("clash")
    await cluster.wait_reason("clash", "NameConflict")


async def test_every_request_is_allowed_by_the_cluster_role_and_every_rule_is_used(
        cluster: Cluster, operator: Operator, kube_api, kubeconfig):
    grants = granted(cluster_role())

    # 1. With --namespace (the integration fixture), and the start-up check of `workload-operator run`.
    await Kube.from_environment().check_ready()
    await every_api_call(cluster, kube_api)
    await operator.stop()
    namespaced = len(list(kube_api))

    # 2. Cluster-wide, as the Deployment runs it, in another namespace.
    elsewhere = Cluster(kubeconfig, "research")
    await elsewhere.create_namespace()
    clusterwide = ClusterwideOperator()
    await clusterwide.start()
    try:
        await every_api_call(elsewhere, kube_api)
    finally:
        await clusterwide.stop()

    requests = list(kube_api)
    checks = checks_of(requests)
    denied = sorted(set(refused(checks, grants)))
    assert not denied, "requests the ClusterRole in deploy/ does not allow:\n" + "\n".join(denied)

    used = {check.what for check in checks if not isinstance(check.what, NonResource)}
    unused = grants - used - set(UNEXERCISED)
    assert not unused, f"rules in deploy/ that no request needed (remove them, or explain them in UNEXERCISED): {unused}"
    assert not set(UNEXERCISED) - grants, "UNEXERCISED names rules the ClusterRole does not have"

    # The scenarios reached what they are meant to: both modes, both agents, non-resource discovery too.
    agents = {r.headers.get("User-Agent", "").split("/")[0] for r in requests}
    assert {"workload-operator", "kopf"} <= agents
    assert Check(NonResource("get", "/apis/ml.lifecycle.dev/v1alpha1"),  # kube.check_ready()
                 f"{user_agent()}: GET /apis/ml.lifecycle.dev/v1alpha1") in checks
    later = [r for r in requests[namespaced:] if r.headers.get("User-Agent", "").startswith("kopf/")]
    assert {"/apis/ml.lifecycle.dev/v1alpha1/workloads", "/api/v1/pods"} <= {r.url.path for r in later}, "cluster-wide"
    assert not [r for r in later if r.url.path == "/api/v1/namespaces"], "cluster-wide, kopf reads no namespaces"


async def test_leader_elections_requests_are_allowed_by_its_role_in_its_namespace_and_use_every_rule(kube_api,
                                                                                                     kubeconfig):
    """Two candidates as the Deployment's replicas run them: the first creates the Lease and renews it, the
    second reads it while standing by, the first releases it, the second acquires and releases it."""
    role = leader_election_role()
    namespace, lost = role["metadata"]["namespace"], []

    def candidate(identity: str) -> Elector:
        settings = LeaseSettings(namespace=namespace, identity=identity, lease_duration=3, renew_deadline=1.5,
                                 retry_period=1)
        elector = Elector(Kube.from_environment().api_client, settings, on_lost=lost.append)
        elector.start()
        return elector

    async def is_set(event) -> bool:
        return event.is_set()

    def lease_writes() -> int:
        return len(kube_api.writes(resource="leases", methods=("PUT",)))

    first = candidate("first")
    await wait_for(lambda: is_set(first.leading), "the first candidate to lead")
    second = candidate("second")
    async def standing_by() -> bool:
        return second.holder == "first" and lease_writes() > 0

    await wait_for(standing_by, "the second to see the first lead, and a renewal")
    assert await asyncio.to_thread(first.release)
    await wait_for(lambda: is_set(second.leading), "the second candidate to take over")
    assert await asyncio.to_thread(second.release)

    requests = [r for r in kube_api if "/leases" in r.url.path]
    assert {r.headers.get("User-Agent", "").split("/")[0] for r in requests} == {"workload-operator"}
    elsewhere = [r.url.path for r in requests if parse_resource_path(r.url.path).namespace != namespace]
    assert not elsewhere, f"Lease requests outside {namespace}, where the Role does not reach: {elsewhere}"
    checks = checks_of(requests)
    denied = sorted(set(refused(checks, granted(role))))
    assert not denied, "requests deploy/role.yaml does not allow:\n" + "\n".join(denied)
    assert {check.what for check in checks} == granted(role), "every verb of the Role, and no other, was used"
    assert not lost
