"""The CRD's structural schema, read from the generated YAML, evaluated with an independent JSON-Schema
validator (jsonschema), together with the spec's CEL rules: every corpus case the API server refuses is
refused here naming the field, and every case it accepts (the operator's InvalidSpec) passes.

The API server's schema check with strict field validation (kubectl's default) is JSON Schema plus two
things this test adds: unknown fields are refused (``additionalProperties: false`` wherever an object lists
its properties), and ``x-kubernetes-int-or-string`` nodes take an integer or a string (their ``anyOf``).
"""

import copy
import pathlib
from typing import Any

import jsonschema
import pytest
import yaml

from tests.harness import CORPUS
from workload_operator.lifecycle import parse_spec


def strict(node: dict[str, Any]) -> dict[str, Any]:
    node = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-validations")}
    if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    for key in ("properties",):
        if key in node:
            node[key] = {name: strict(sub) for name, sub in node[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = strict(node[key])
    return node


@pytest.fixture(scope="session")
def spec_validator(crd_schema):
    return jsonschema.Draft7Validator(strict(copy.deepcopy(crd_schema["properties"]["spec"])))


def refusals(validator, spec_rules, spec) -> list[str]:
    """The API server's messages, roughly: the failing field's path, then why."""
    messages = []
    for error in validator.iter_errors(spec):
        path = ".".join(["spec", *(str(p) for p in error.absolute_path)])
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            messages += [f"{path}.{name}: unknown field" for name in error.instance if name not in allowed]
        else:
            messages.append(f"{path}: {error.message}")
    if not messages and isinstance(spec, dict):
        messages = [f"spec{rule.raw['fieldPath']}: {rule.message(spec)}" for rule in spec_rules if not rule.allows(spec)]
    return messages


@pytest.mark.parametrize("case", CORPUS, ids=[case["name"] for case in CORPUS])
def test_the_schema_and_rules_refuse_what_the_api_server_refuses(spec_validator, spec_rules, case):
    messages = refusals(spec_validator, spec_rules, case["spec"])
    if case["server"] == "refuses":
        assert any(case["field"] in m for m in messages), messages
    else:
        assert messages == [], messages


def test_the_examples_pass(spec_validator, spec_rules):
    for path in sorted((pathlib.Path(__file__).parents[2] / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "Workload":
                assert refusals(spec_validator, spec_rules, document["spec"]) == [], path.name


def test_a_wrong_type_deep_in_the_template_is_refused_naming_its_path(spec_validator, spec_rules):
    spec = {"image": "a", "template": {"spec": {"volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": 5}}]}}}
    (message,) = refusals(spec_validator, spec_rules, spec)
    assert message.startswith("spec.template.spec.volumes.0.persistentVolumeClaim.claimName: 5 is not of type 'string'")


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """What the API server stores: every absent property whose schema has a ``default`` gets it (structural
    defaulting), at every depth of objects and lists."""
    if isinstance(value, dict) and "properties" in schema:
        value = dict(value)
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = with_defaults(sub, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [with_defaults(schema["items"], item) for item in value]
    return value


def test_the_examples_as_the_api_server_stores_them_are_valid_for_the_operator(crd_schema):
    # A default in the schema is written into the object: a field the operator reads as the user's own choice
    # must not have one (a schema default of readinessPath made every readinessProbe of a template refused).
    spec_schema = crd_schema["properties"]["spec"]
    for path in sorted((pathlib.Path(__file__).parents[2] / "examples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "Workload":
                parse_spec(with_defaults(spec_schema, document["spec"]))  # raises InvalidSpec naming the field
