"""Generate the Workload CustomResourceDefinition from the lifecycle core.

    python -m workload_operator.crd > crds/workloads.yaml

The schema comes from the pydantic spec and status models; the CEL rules come from
the transition map. A test checks that ``crds/workloads.yaml`` is exactly this output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

from workload_operator import GROUP, KIND, PLURAL, VERSION
from workload_operator.lifecycle.spec import WorkloadSpec
from workload_operator.lifecycle.states import INITIAL, TERMINAL, TRANSITIONS, where_to
from workload_operator.lifecycle.status import WorkloadStatus
from workload_operator.podschema import template_schema

JsonSchema = dict[str, Any]

# JSON-Schema keywords that a structural schema does not accept; the API server
# prunes unknown fields instead of refusing them (the operator still refuses them).
_DROPPED_KEYWORDS = {"title", "propertyNames"}


def _cel_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid CEL string literal


def _cel_list(values: list[str]) -> str:
    return "[" + ", ".join(_cel_string(v) for v in values) + "]"


def _cel_map(entries: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_cel_string(k)}: {v}" for k, v in entries.items()) + "}"


def _structural(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Turn pydantic's JSON Schema into a Kubernetes structural schema (no refs, no nulls)."""
    if "$ref" in node:
        outer = {k: v for k, v in node.items() if k != "$ref"}
        return _structural({**defs[node["$ref"].rsplit("/", 1)[-1]], **outer}, defs)
    branches = node.get("anyOf", [])
    non_null = [b for b in branches if b != {"type": "null"}]
    if branches and len(non_null) < len(branches):  # Optional[X]: absence, not null, means "not set"
        outer = {k: v for k, v in node.items() if k != "anyOf" and not (k == "default" and v is None)}
        merged = non_null[0] if len(non_null) == 1 else {"anyOf": non_null}
        return _structural({**merged, **outer}, defs)

    result: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS or (key == "additionalProperties" and value is False):
            continue
        if key == "properties":
            result[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            result[key] = _structural(value, defs)
        elif key == "patternProperties":  # map keys: structural schemas have no key patterns
            (value_schema,) = value.values()
            result["additionalProperties"] = _structural(value_schema, defs)
        elif key == "default" and value is None:
            continue
        else:
            result[key] = value
    return result


def _model_schema(model: type[Any], mode: str) -> JsonSchema:
    schema = model.model_json_schema(by_alias=True, mode=mode)
    return _structural(schema, schema.pop("$defs", {}))


def transition_rule() -> JsonSchema:
    """The CEL rule that refuses a status write along an edge the map does not have.

    It sits at the root, not on ``status``: a rule on ``status`` that uses ``oldSelf``
    is skipped when the old object has no status, which would let the first status
    write set any state. Main-resource writes cannot change status, so they pass.
    """
    edges = _cel_map({source: _cel_list(list(targets)) for source, targets in TRANSITIONS.items()})
    # The refusal texts are the core's own (InvalidTransition), so the API server and the operator say the same.
    explanations = _cel_map({state: _cel_string(where_to(state)) for state in TRANSITIONS})
    had = "has(oldSelf.status) && has(oldSelf.status.state)"
    has_now = "has(self.status) && has(self.status.state)"
    rule = (
        f"{had} ? ({has_now} && (self.status.state == oldSelf.status.state"
        f" || self.status.state in {edges}[oldSelf.status.state]))"
        f" : (!has(self.status) || !has(self.status.state) || self.status.state == {_cel_string(INITIAL)})"
    )
    message = (
        f"{had} ? ({has_now}"
        f" ? 'invalid state transition ' + oldSelf.status.state + ' -> ' + self.status.state + ': '"
        f" + {explanations}[oldSelf.status.state]"
        f" : 'status.state cannot be removed once set (it is ' + oldSelf.status.state + ')')"
        f" : 'invalid first state ' + self.status.state + ': ' + {_cel_string(where_to(None))}"
    )
    return {"rule": rule, "messageExpression": message, "reason": "FieldValueInvalid", "fieldPath": ".status.state"}


def cancel_rule() -> JsonSchema:
    """The CEL rule that refuses ``spec.cancel: true`` on a workload that has already finished."""
    terminal = _cel_list(sorted(TERMINAL))
    rule = (
        "!has(self.spec.cancel) || !self.spec.cancel"
        " || (has(oldSelf.spec.cancel) && oldSelf.spec.cancel)"
        f" || !has(oldSelf.status) || !has(oldSelf.status.state) || !(oldSelf.status.state in {terminal})"
    )
    message = "'cannot cancel a Workload that has already finished: it is ' + oldSelf.status.state"
    return {"rule": rule, "messageExpression": message, "reason": "FieldValueForbidden", "fieldPath": ".spec.cancel"}


def service_rules() -> list[JsonSchema]:
    """The spec rules the pydantic model checks across fields (same messages)."""
    return [
        # A main container with an image in the template is checked by the operator (InvalidSpec):
        # a rule that looked through the template's containers would cost too much for the CEL budget.
        {"rule": "has(self.image) || has(self.template)",
         "message": "spec.image or a container named main in spec.template.spec.containers is required",
         "fieldPath": ".image", "reason": "FieldValueRequired"},
        {"rule": "!has(self.type) || self.type != 'service' || has(self.port)",
         "message": "port is required for type: service", "fieldPath": ".port", "reason": "FieldValueRequired"},
        {"rule": "(has(self.type) && self.type == 'service') || !has(self.port)",
         "message": "port is only used by type: service", "fieldPath": ".port", "reason": "FieldValueForbidden"},
    ]


def status_schema() -> JsonSchema:
    schema = _model_schema(WorkloadStatus, "serialization")
    schema["properties"]["conditions"].update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    schema["properties"]["history"]["x-kubernetes-list-type"] = "atomic"
    schema.pop("required", None)
    return schema


def spec_schema() -> JsonSchema:
    schema = _model_schema(WorkloadSpec, "validation")
    schema["x-kubernetes-validations"] = service_rules()
    # The pod template's schema is generated from the Kubernetes core/v1 types (workload_operator.podschema).
    schema["properties"]["template"] = template_schema()
    # A gang's size is what its pods are counted against: it is fixed for the workload's life.
    schema["properties"]["replicas"]["x-kubernetes-validations"] = [{
        "rule": "self == oldSelf", "reason": "FieldValueForbidden",
        "message": "spec.replicas cannot be changed: delete the Workload and create it again",
    }]
    return schema


def build_crd() -> JsonSchema:
    columns = [
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.podsReady"},
        {"name": "Attempts", "type": "integer", "jsonPath": ".status.attempts"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
    ]
    root = {
        "type": "object",
        "description": "An ML workload (training job, batch task or long-running service) run as a pod "
                       "and tracked through a validated lifecycle.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        "x-kubernetes-validations": [transition_rule(), cancel_rule()],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": KIND.lower(),
                "shortNames": ["mlwl"], "categories": ["ml"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": root},
            }],
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full: no &anchors or *aliases in a manifest people read."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER = "# Generated by `python -m workload_operator.crd`: do not edit by hand.\n"


def render() -> str:
    return HEADER + yaml.dump(build_crd(), Dumper=_PlainDumper, sort_keys=False, width=120)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
