"""The CRD in crds/ is exactly what the generator emits, and a valid structural schema."""

import pathlib

import yaml

from workload_operator import GROUP, KIND, PLURAL, VERSION, crd
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
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (KIND, "workloads", ["wl"], ["ml"])
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
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
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
    assert schema["spec"]["required"] == ["image"]
    assert schema["spec"]["properties"]["maxAttempts"]["default"] == 3
    assert schema["status"]["properties"]["state"]["enum"] == [
        "queued", "preparing", "running", "collecting", "completed", "failed", "cancelled", "orphaned", "serving", "stopping",
    ]
