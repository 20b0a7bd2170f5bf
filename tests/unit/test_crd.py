"""The CRD in crds/ is exactly what the generator emits, and a valid structural schema."""

import json
import pathlib
from importlib import resources

import pytest
import yaml

from workload_operator import GROUP, KIND, PLURAL, VERSION, crd, podschema
from workload_operator.lifecycle import WorkloadSpec, WorkloadStatus

ROOT = pathlib.Path(__file__).parents[2]


def walk(node, path="$"):
    """Every sub-schema with its path."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from walk(node[key], f"{path}[{key}]")


def test_the_checked_in_crd_is_exactly_the_generated_one():
    assert (ROOT / "crds" / "workloads.yaml").read_text() == crd.render(), (
        "crds/workloads.yaml is stale: run `python -m workload_operator.crd > crds/workloads.yaml`"
    )


def test_names_scope_and_subresources():
    manifest = yaml.safe_load(crd.render())
    assert manifest["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    names = manifest["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (KIND, "workloads", ["mlwl"], ["ml"])
    assert manifest["spec"]["scope"] == "Namespaced"
    (version,) = manifest["spec"]["versions"]
    assert version["name"] == VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert {"State": ".status.state", "Attempts": ".status.attempts", "Reason": ".status.reason",
            "Age": ".metadata.creationTimestamp"}.items() <= columns.items()


def test_the_schema_is_structural():
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        assert "$ref" not in node and "title" not in node, path
        assert node.get("additionalProperties") is not False, path
        untyped_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or untyped_ok, f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "null" not in str(node.get("type")), path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf only for int-or-string"


def test_every_list_and_string_is_bounded_so_cel_cost_stays_in_budget():
    """Outside the pod template: no CEL rule looks inside it (the one that names it asks has(self.template),
    which costs the same whatever the template holds), and a bound there would refuse valid pods."""
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        if path.startswith("$.spec.template"):
            continue
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        if node.get("type") == "string" and path.startswith("$.spec"):
            assert "maxLength" in node or "enum" in node, path


def test_the_schema_has_the_models_fields():
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    spec_fields = {f.alias for f in WorkloadSpec.model_fields.values()}
    status_fields = {f.alias for f in WorkloadStatus.model_fields.values()}
    assert set(schema["spec"]["properties"]) == spec_fields
    assert set(schema["status"]["properties"]) == status_fields
    assert "required" not in schema["spec"]  # spec.image, or a main container in the template: a CEL rule and the operator
    assert schema["spec"]["properties"]["maxAttempts"]["default"] == 3
    assert schema["status"]["properties"]["state"]["enum"] == [
        "queued", "preparing", "running", "collecting", "completed", "failed", "cancelled", "orphaned", "serving", "stopping",
    ]


def test_the_template_is_the_generated_typed_schema_and_nothing_is_left_open():
    spec = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    template = spec["properties"]["template"]
    assert template == podschema.template_schema()
    pod = template["properties"]["spec"]["properties"]
    assert pod["volumes"]["items"]["properties"]["persistentVolumeClaim"]["properties"]["claimName"]["type"] == "string"
    assert pod["volumes"]["description"]  # kubectl explain workload.spec.template.spec.volumes
    assert pod["containers"]["items"]["required"] == ["name"]
    limits = pod["containers"]["items"]["properties"]["resources"]["properties"]["limits"]["additionalProperties"]
    assert limits["x-kubernetes-int-or-string"] and limits["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert {"ephemeralContainers", "nodeName"}.isdisjoint(pod)
    assert set(template["properties"]["metadata"]["properties"]) == {"labels", "annotations"}
    for path, node in walk(template):
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert "format" not in node and not any(k.startswith("x-kubernetes-list") or k.startswith("x-kubernetes-patch")
                                                for k in node), path


def test_the_crd_fits_client_side_apply_and_etcd():
    """kubectl apply (client-side) stores the object as compact JSON in an annotation of at most 256 KiB."""
    size = len(json.dumps(crd.build_crd(), separators=(",", ":")))
    assert size < 256 * 1024 - 4096, size
    assert len(crd.render()) < 1_500_000


def test_the_shipped_template_schema_is_exactly_what_the_upstream_types_give():
    pytest.importorskip("kubernetes_validate", reason="the test extra installs kubernetes-validate")
    shipped = resources.files("workload_operator").joinpath("schemas", podschema.SCHEMA_FILE).read_text()
    assert shipped == podschema.render(), (
        "the pod template's schema is stale: run `python -m workload_operator.podschema "
        f"> operator/workload_operator/schemas/{podschema.SCHEMA_FILE}`"
    )
