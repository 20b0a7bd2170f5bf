"""The manifests in deploy/ (a kustomize base) and the Dockerfile: what the operator needs, and no more.

The static half of the RBAC check: the ClusterRole grants exactly OPERATOR_NEEDS, the list of
(apiGroup, resource, verb) read off the code. The dynamic half, tests/integration/test_rbac.py,
runs the operator and checks every request it actually sent against the same ClusterRole.
"""

from __future__ import annotations

import copy
import functools
import pathlib
import re
import tomllib
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from workload_operator import GROUP, PLURAL, cli, crd, kube
from workload_operator.manifests import MANAGED_BY, MANAGED_BY_LABEL

ROOT = pathlib.Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
NAMESPACE = "workload-operator"
UID = 65532

Rule = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb), as RBAC authorizes a request

# Every (apiGroup, resource, verb) the operator needs, read off the code. The ClusterRole must be exactly this.
OPERATOR_NEEDS: frozenset[Rule] = frozenset({
    (GROUP, PLURAL, "list"),                  # kopf: @kopf.index / @kopf.on.event on workloads (handlers.py), initial list
    (GROUP, PLURAL, "watch"),                 # kopf: the same handlers, then the watch
    (GROUP, PLURAL, "get"),                   # kube.get_workload(): re-read after a Conflict or a Transient failure
    (GROUP, PLURAL, "patch"),                 # kube.add_finalizer(), kube.remove_finalizer()
    (GROUP, PLURAL, "delete"),                # kube.delete_workload(): ttlSecondsAfterFinished
    (GROUP, f"{PLURAL}/status", "patch"),     # kube.write_status()
    (GROUP, f"{PLURAL}/finalizers", "update"),  # admission (OwnerReferencesPermissionEnforcement): kube.create_pod()
                                              # and kube.create_service() set blockOwnerDeletion (manifests.owner_reference())
    ("", "pods", "list"),                     # kopf: @kopf.index / @kopf.on.event on pods, label-selected (handlers.py)
    ("", "pods", "watch"),                    # kopf: the same handlers, then the watch
    ("", "pods", "create"),                   # kube.create_pod()
    ("", "pods", "get"),                      # kube.create_pod() on 409: is the pod of that name the workload's own?
                                              # kube.delete_retired_pods(): those the watch no longer shows
    ("", "pods", "patch"),                    # kube.retire_pod(): a finished Workload's finished pod leaves the watch
    ("", "pods", "delete"),                   # kube.delete_pod(); admission: an ownerReference needs delete on the object
    ("", "services", "create"),               # kube.create_service()
    ("", "services", "get"),                  # kube.create_service() on 409; kube.delete_service() reads before it deletes
    ("", "services", "delete"),               # kube.delete_service(); admission, as for pods
    ("", "events", "create"),                 # kube.post_event() (kopf's own event posting is off: handlers.on_startup)
    ("", "namespaces", "list"),               # kopf's namespace observer, when run with --namespace
    ("", "namespaces", "watch"),              # kopf's namespace observer, when run with --namespace
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),   # kopf's resource observer
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),  # kopf's resource observer
})
# What leader election needs on its Lease (leader.py, kubernetes.leaderelection's LeaseLock), in its own namespace.
LEADER_ELECTION_NEEDS: frozenset[Rule] = frozenset({
    ("coordination.k8s.io", "leases", "get"),     # LeaseLock.get() every retry period; Elector.release()
    ("coordination.k8s.io", "leases", "create"),  # LeaseLock.create(): the first replica ever
    ("coordination.k8s.io", "leases", "update"),  # LeaseLock.update(): acquire and renew; Elector.release()
})
# Never to be granted, whatever a future rule says.
FORBIDDEN_RESOURCES = {"secrets", "serviceaccounts/token", "pods/exec", "pods/attach", "pods/portforward",
                       "clusterroles", "clusterrolebindings", "roles", "rolebindings"}
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate", "deletecollection"}


# --- loading the kustomization ---------------------------------------------------------------------

def kustomization(folder: pathlib.Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def load_kustomization(folder: pathlib.Path = DEPLOY) -> Iterator[tuple[pathlib.Path, dict[str, Any]]]:
    """Every object a kustomize build of ``folder`` holds, with its file: plain files and base folders only."""
    for entry in kustomization(folder).get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), f"{entry}: a folder resource needs a kustomization.yaml"
            yield from load_kustomization(path)
        else:
            # kustomize's default load restrictor: a file must be inside the kustomization's own folder.
            assert path.is_relative_to(folder.resolve()), f"{entry}: kustomize refuses a file outside {folder}"
            for document in copy.deepcopy(_documents(path)):
                yield path, document


@functools.cache
def _documents(path: pathlib.Path) -> list[dict[str, Any]]:
    """A file's YAML documents, parsed once (the CRD's 4,000 lines took a second a test)."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def objects() -> list[dict[str, Any]]:
    return [obj for _, obj in load_kustomization()]


def the(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [obj for obj in objects() if obj["kind"] == kind and name in (None, obj["metadata"]["name"])]
    return found


def cluster_role() -> dict[str, Any]:
    return the("ClusterRole", "workload-operator")


def leader_election_role() -> dict[str, Any]:
    return the("Role")


def granted(role: dict[str, Any]) -> set[Rule]:
    """A role's rules as the set of (apiGroup, resource, verb) they allow."""
    return {(group, resource, verb) for rule in role["rules"]
            for group in rule.get("apiGroups", []) for resource in rule.get("resources", []) for verb in rule["verbs"]}


def deployment_pod() -> dict[str, Any]:
    return the("Deployment")["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    (main,) = deployment_pod()["containers"]
    return main


# --- the kustomization ----------------------------------------------------------------------------

def test_the_kustomization_is_plain_files_and_the_crd_base():
    base = kustomization(DEPLOY)
    assert set(base) <= {"apiVersion", "kind", "resources"}, "plain resources only: no generators, no patches"
    assert "../crds" in base["resources"], "the CRD comes from crds/, not from a copy"
    listed = {(DEPLOY / entry).resolve() for entry in base["resources"]}
    unlisted = [p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml" and p.resolve() not in listed]
    assert not unlisted, f"files in deploy/ that kustomization.yaml does not list: {unlisted}"
    assert kustomization(ROOT / "crds")["resources"] == ["workloads.yaml"]


def test_the_crd_is_the_generated_one():
    (crd_file, manifest), = [(p, obj) for p, obj in load_kustomization() if obj["kind"] == "CustomResourceDefinition"]
    assert crd_file == (ROOT / "crds" / "workloads.yaml").resolve()
    assert manifest == yaml.safe_load(crd.render())


def test_every_object_is_named_and_namespaced_consistently():
    kinds = sorted(obj["kind"] for obj in objects())
    assert kinds == sorted(["CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
                            "ClusterRoleBinding", "Role", "RoleBinding", "ClusterRole", "ClusterRole", "Deployment",
                            "PodDisruptionBudget"])
    assert the("Namespace")["metadata"]["name"] == NAMESPACE
    for obj in objects():
        if obj["kind"] in ("ServiceAccount", "Deployment", "Role", "RoleBinding", "PodDisruptionBudget"):
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]
        else:  # cluster-scoped
            assert "namespace" not in obj["metadata"], obj["kind"]


# --- the Deployment --------------------------------------------------------------------------------

def test_two_replicas_one_leading():
    spec = the("Deployment")["spec"]
    assert spec["replicas"] == 2, "a standby to take over"
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    args = container()["args"]
    assert "--leader-elect" in args and "--no-leader-elect" not in args, "only the Lease's holder may reconcile"
    assert not {"--lease-name", "--lease-namespace"} & set(args), "the defaults: the Role names that namespace"
    env = {var["name"]: var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for var in container()["env"]}
    assert env["POD_NAME"] == "metadata.name", "the identity in the Lease: the pod's name"
    assert env["POD_NAMESPACE"] == "metadata.namespace", "the Lease in the operator's own namespace"
    budget = the("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1 and budget["selector"] == spec["selector"]


def test_the_image_and_the_command():
    main = container()
    package = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert main["image"] == f"workload-operator:{package['version']}"  # overlays change it with `images:`
    assert kube.USER_AGENT == f"workload-operator/{package['version']}"
    assert main["args"][0] == "run" and "command" not in main, "the image's ENTRYPOINT is workload-operator"


def test_the_probes_ask_the_liveness_endpoint_the_operator_serves():
    main = container()
    args = main["args"]
    endpoint = urllib.parse.urlsplit(args[args.index("--liveness") + 1])
    assert endpoint.hostname == "0.0.0.0", "the kubelet probes the pod's IP, not localhost"
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        http = main[probe]["httpGet"]
        port = ports.get(http["port"], http["port"])
        assert (port, http["path"]) == (endpoint.port, endpoint.path), probe


def test_the_metrics_port_is_declared():
    main = container()
    args = main["args"]
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert ports["metrics"] == int(args[args.index("--metrics-port") + 1])


def test_the_security_context():
    pod, main = deployment_pod(), container()
    security = {**pod.get("securityContext", {}), **main["securityContext"]}  # the container's wins
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == UID
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged") is not True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True, "the operator's own credentials"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_a_writable_tmp_on_the_read_only_root():
    pod, main = deployment_pod(), container()
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (tmp,) = [mount for mount in main["volumeMounts"] if mount["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]


def quantity(value: str | int) -> float:
    units = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value)).groups()
    return float(number) * units[unit]


def test_resource_requests_and_limits():
    resources = container()["resources"]
    for name in ("cpu", "memory"):
        assert quantity(resources["requests"][name]) <= quantity(resources["limits"][name]), name


def test_the_operator_pod_is_not_one_of_the_pods_it_watches():
    labels = the("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels.get(MANAGED_BY_LABEL) != MANAGED_BY, "the operator watches pods with this label: its own would be one"


# --- RBAC ------------------------------------------------------------------------------------------

def test_the_cluster_role_grants_exactly_what_the_operator_needs():
    grants = granted(cluster_role())
    assert grants - OPERATOR_NEEDS == set(), "granted but not needed"
    assert OPERATOR_NEEDS - grants == set(), "needed but not granted"


def test_no_wildcards_no_secrets_no_escalation():
    for rule in [rule for obj in objects() if obj["kind"] in ("ClusterRole", "Role") for rule in obj["rules"]]:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in item for item in rule.get(field, [])), f"a wildcard in {field}: {rule}"
        assert "nonResourceURLs" not in rule, "discovery is system:discovery's (every authenticated user)"
        assert not set(rule["resources"]) & FORBIDDEN_RESOURCES, rule
        assert not set(rule["verbs"]) & FORBIDDEN_VERBS, rule


def test_the_binding_binds_the_deployments_service_account_to_the_role():
    binding, account = the("ClusterRoleBinding"), the("ServiceAccount")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": cluster_role()["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert deployment_pod()["serviceAccountName"] == account["metadata"]["name"]
    assert the("Deployment")["metadata"]["namespace"] == account["metadata"]["namespace"]
    bound = [obj for obj in objects() if obj["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert len(bound) == 2, "the operator's ClusterRole and its leader-election Role; users' roles are aggregated"


def test_the_leader_election_role_grants_exactly_the_lease_verbs_in_the_operators_namespace():
    role, binding, account = leader_election_role(), the("RoleBinding"), the("ServiceAccount")
    assert granted(role) == LEADER_ELECTION_NEEDS
    assert role["metadata"]["namespace"] == NAMESPACE == cli.LEASE_NAMESPACE, "the Lease's default namespace"
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]


# --- users' roles, aggregated into the built-in admin, edit and view -----------------------------------

AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-{}"
# The built-in user-facing roles as the API server's bootstrap policy defines them: each aggregates the
# ClusterRoles labelled aggregate-to-<itself>; view carries aggregate-to-edit and edit aggregate-to-admin,
# so view's rules reach edit and admin, and edit's reach admin.
BUILTIN_ROLES = {"view": {AGGREGATE.format("edit"): "true"}, "edit": {AGGREGATE.format("admin"): "true"},
                 "admin": {}}
READ = ("get", "list", "watch")
VIEW_GAINS: frozenset[Rule] = frozenset(
    {(GROUP, resource, verb) for resource in (PLURAL, f"{PLURAL}/status") for verb in READ}
    | {(group, "events", verb) for group in ("", "events.k8s.io") for verb in READ})
EDIT_GAINS: frozenset[Rule] = VIEW_GAINS | {(GROUP, PLURAL, verb) for verb in
                                            ("create", "update", "patch", "delete")}


def aggregated(builtin: str) -> set[Rule]:
    """What deploy/'s ClusterRoles add to a built-in role: the clusterrole-aggregation controller, to a fixpoint."""
    roles = {obj["metadata"]["name"]: (obj["metadata"].get("labels") or {}, granted(obj))
             for obj in objects() if obj["kind"] == "ClusterRole"}
    rules: dict[str, set[Rule]] = {name: set() for name in BUILTIN_ROLES}
    changed = True
    while changed:
        changed = False
        for name in BUILTIN_ROLES:
            sources = [grants for labels, grants in roles.values() if labels.get(AGGREGATE.format(name)) == "true"]
            sources += [rules[other] for other, labels in BUILTIN_ROLES.items()
                        if labels.get(AGGREGATE.format(name)) == "true"]
            new = set().union(*sources) if sources else set()
            if new - rules[name]:
                rules[name] |= new
                changed = True
    return rules[builtin]


def test_the_users_roles_add_exactly_what_they_say_to_admin_edit_and_view():
    assert aggregated("view") == VIEW_GAINS
    assert aggregated("edit") == EDIT_GAINS
    assert aggregated("admin") == EDIT_GAINS
    assert not aggregated("admin") & OPERATOR_NEEDS - VIEW_GAINS - EDIT_GAINS


# What users do, as the requests the API server authorizes (kubectl's requests for each).
USER_ACTIONS: dict[str, list[Rule]] = {
    "kubectl get mlwl -A -w": [(GROUP, PLURAL, "list"), (GROUP, PLURAL, "watch")],
    "kubectl describe mlwl NAME (its Events)": [(GROUP, PLURAL, "get"), ("", "events", "list")],
    "kubectl events --for mlwl/NAME": [("events.k8s.io", "events", "list")],
    "kubectl wait --for=condition=Finished mlwl/NAME": [(GROUP, PLURAL, "get"), (GROUP, PLURAL, "list"),
                                                      (GROUP, PLURAL, "watch")],
    "GET .../workloads/NAME/status": [(GROUP, f"{PLURAL}/status", "get")],
    "kubectl apply -f mlwl.yaml": [(GROUP, PLURAL, "get"), (GROUP, PLURAL, "create"), (GROUP, PLURAL, "patch")],
    "kubectl replace -f mlwl.yaml": [(GROUP, PLURAL, "update")],
    "cancel: kubectl patch mlwl NAME -p spec.cancel": [(GROUP, PLURAL, "patch")],
    "kubectl delete mlwl NAME": [(GROUP, PLURAL, "delete")],
    "kubectl delete mlwl --all": [(GROUP, PLURAL, "list"), (GROUP, PLURAL, "delete")],
    "delete all at once (deletecollection; kubectl never does)": [(GROUP, PLURAL, "deletecollection")],
    "write a status (only the operator may)": [(GROUP, f"{PLURAL}/status", "patch")],
    "edit the finalizers' subresource (only the operator may)": [(GROUP, f"{PLURAL}/finalizers", "update")],
}
ALLOWED = {
    "view": {"kubectl get mlwl -A -w", "kubectl describe mlwl NAME (its Events)", "kubectl events --for mlwl/NAME",
             "kubectl wait --for=condition=Finished mlwl/NAME", "GET .../workloads/NAME/status"},
    "edit": set(USER_ACTIONS) - {"write a status (only the operator may)",
                                 "edit the finalizers' subresource (only the operator may)",
                                 "delete all at once (deletecollection; kubectl never does)"},
}
ALLOWED["admin"] = ALLOWED["edit"]


@pytest.mark.parametrize("builtin", sorted(BUILTIN_ROLES))
@pytest.mark.parametrize("action", sorted(USER_ACTIONS))
def test_what_each_built_in_role_may_do_with_workloads(builtin, action):
    allowed = set(USER_ACTIONS[action]) <= aggregated(builtin)
    assert allowed == (action in ALLOWED[builtin]), f"{builtin}: {action}"


# --- the Dockerfile --------------------------------------------------------------------------------

def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_image_runs_the_console_script_as_the_pods_user():
    text = dockerfile()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'ENTRYPOINT ["workload-operator"]' in text and "workload-operator" in scripts
    assert 'CMD ["run"]' in text
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert re.search(rf"^USER {UID}(:{UID})?$", final_stage, flags=re.M), "non-root, the uid the Deployment runs as"


def test_the_base_image_is_pinned():
    (image,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile(), flags=re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    stages = re.findall(r"^FROM (\S+)", dockerfile(), flags=re.M)
    assert stages and all(stage == "${PYTHON_IMAGE}" for stage in stages), stages


def test_the_build_context_is_only_what_the_wheel_needs():
    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert patterns[0] == "*"
    assert {p for p in patterns if p.startswith("!")} == {"!pyproject.toml", "!README.md", "!operator/"}


# --- docs/operations.md says the same ---------------------------------------------------------------

def operations_section(title: str) -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_rbac_table_in_the_docs_is_the_cluster_role():
    documented: set[Rule] = set()
    group = resource = ""
    for line in operations_section("RBAC").splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) != 4 or cells[0] in ("API group", "---"):
            continue
        group = {"core": ""}.get(cells[0], cells[0]) if cells[0] or cells[1] else group
        resource = cells[1] or resource
        documented |= {(group, resource, verb.strip()) for verb in cells[2].split(",")}
    assert documented == granted(cluster_role()) | granted(leader_election_role())


def test_the_run_options_in_the_docs_are_the_clis(capsys, monkeypatch):
    from workload_operator.cli import main

    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = capsys.readouterr().out
    assert f"```text\n{help_text}```" in operations_section("Run options"), "docs/operations.md: paste `run --help`"
    args = container()["args"]
    assert f"`workload-operator {' '.join(args)}`" in operations_section("Run options")


# --- the web dashboard (deploy/dashboard/) ----------------------------------------------------------

DASHBOARD = DEPLOY / "dashboard"
# What `workload-operator dashboard` asks of the API server (dashboard/server.py, Dashboard._collections):
# one LIST, then WATCHes, of each collection; it reads nothing one by one and writes nothing.
DASHBOARD_NEEDS: frozenset[Rule] = frozenset({
    (GROUP, PLURAL, "list"), (GROUP, PLURAL, "watch"),
    ("", "pods", "list"), ("", "pods", "watch"),
    ("", "events", "list"), ("", "events", "watch"),
})


def dashboard_objects() -> list[dict[str, Any]]:
    return [obj for _, obj in load_kustomization(DASHBOARD)]


def dashboard(kind: str) -> dict[str, Any]:
    (found,) = [obj for obj in dashboard_objects() if obj["kind"] == kind]
    return found


def test_the_dashboard_kustomization_lists_every_file_and_only_reads():
    listed = set(kustomization(DASHBOARD)["resources"])
    assert listed == {p.name for p in DASHBOARD.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(obj["kind"] for obj in dashboard_objects()) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"], "no Service: reached by port-forward"
    assert granted(dashboard("ClusterRole")) == DASHBOARD_NEEDS


def test_the_dashboard_runs_as_its_own_account_on_loopback_from_the_operators_image(capsys):
    deployment = dashboard("Deployment")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    pod = deployment["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    binding = dashboard("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == dashboard("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"],
                                    "namespace": NAMESPACE}] and dashboard("ServiceAccount")["metadata"]["name"] == pod["serviceAccountName"]
    assert main["image"] == container()["image"], "the operator's image"
    args = main["args"]
    assert args[0] == "dashboard" and args[args.index("--address") + 1] == "127.0.0.1"
    port = int(args[args.index("--port") + 1])
    assert main["ports"][0]["containerPort"] == port
    for probe in ("readinessProbe", "livenessProbe"):
        assert f"http://127.0.0.1:{port}/" in " ".join(main[probe]["exec"]["command"]), probe
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    with pytest.raises(SystemExit) as parsed:  # the arguments are the command's own
        cli.main([*args, "--help"])
    assert parsed.value.code == 0 and "--namespace" in capsys.readouterr().out
