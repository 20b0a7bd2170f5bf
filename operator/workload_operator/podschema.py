"""Generate the structural schema of ``spec.template`` from the Kubernetes core/v1 types.

    python -m workload_operator.podschema --kubernetes 1.33 > operator/workload_operator/schemas/podtemplate-v1.33.json

The source is the upstream OpenAPI description of the Kubernetes API, as the PyPI package
``kubernetes-validate`` ships it per release (``kubernetes-json-schema/v1.33.0-local/_definitions.json``,
the swagger definitions such as ``io.k8s.api.core.v1.PodSpec``). That package is only needed to
regenerate (it is in the ``test`` extra, where a drift test regenerates and compares); the operator and
the CRD generator read the JSON file shipped in this package.

The version is the oldest Kubernetes minor release the project still supports: every field in the schema
then exists on every supported API server (a field from a newer release would be accepted here and
silently dropped by an older server when the pod is created); fields newer servers add are refused with
"unknown field" until the schema is regenerated for a newer release, when the support window moves.

What a structural schema (apiextensions.k8s.io/v1) needs, and what is left out:

- every ``$ref`` is inlined; ``["object", "null"]`` types become ``object`` (absence means "not set");
- ``resource.Quantity`` and ``IntOrString`` become ``x-kubernetes-int-or-string`` nodes;
- ``format`` and the list/map/patch markers are dropped (a list-map's keys must be required or defaulted in
  a CRD, which ``ports``' ``protocol`` is not; the pod API itself checks uniqueness when the pod is made);
- descriptions are cut to their first sentence, to keep the CRD under the 256 KiB that client-side
  ``kubectl apply`` stores in its last-applied annotation;
- ``spec.containers`` is not required: the operator adds the main container from the short fields;
- left out of the template: ``metadata`` but its ``labels`` and ``annotations`` (the operator names the pod
  and owns it; likewise in an ephemeral volume's claim template, where the API server allows nothing else), ``spec.ephemeralContainers`` (debugging containers are added to a running pod with
  ``kubectl debug``, never created with it) and ``spec.nodeName`` (it bypasses the scheduler: taints, resource
  fit and the scheduler's reasons in the status; use ``nodeSelector`` or affinity on
  ``kubernetes.io/hostname``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import json
import pathlib
import re
import sys
from typing import Any

KUBERNETES_VERSION = "1.33"
SCHEMA_FILE = f"podtemplate-v{KUBERNETES_VERSION}.json"

_PREFIX = "io.k8s."
_INT_OR_STRING = {"io.k8s.apimachinery.pkg.api.resource.Quantity", "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
# Fields a Workload's template must not carry (see the module's docstring), by definition.
_LEFT_OUT = {
    "io.k8s.api.core.v1.PodSpec": {"ephemeralContainers", "nodeName"},
}
# In a pod template, and in an ephemeral volume's claim template, only labels and annotations mean anything.
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_TEMPLATE_METADATA = {"labels", "annotations"}


def _first_sentence(text: str) -> str:
    paragraph = text.split("\n\n", 1)[0].strip()
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph, re.S)
    return " ".join((match.group(1) if match else paragraph).split())


def _convert(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    """One node of the upstream JSON schema as a structural schema node."""
    description = node.get("description")
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"recursive type {name} inside the pod template: it must be cut")
        if name in _INT_OR_STRING:
            result: dict[str, Any] = {"x-kubernetes-int-or-string": True,
                                      "anyOf": [{"type": "integer"}, {"type": "string"}]}
        else:
            result = _convert(defs[name], defs, (*seen, name))
            for field in _LEFT_OUT.get(name, ()):
                result["properties"].pop(field, None)
            if name == "io.k8s.api.core.v1.PodSpec":  # the operator adds the main container
                result.pop("required", None)
            if name == _OBJECT_META:  # a template's metadata: the API server keeps only these
                result["properties"] = {k: v for k, v in result["properties"].items() if k in _TEMPLATE_METADATA}
        if description:
            result["description"] = _first_sentence(description)
        return result
    types = node.get("type")
    types = [t for t in (types if isinstance(types, list) else [types]) if t not in (None, "null")]
    if not types:
        raise ValueError(f"untyped node: {node}")
    (kind,) = types
    result = {"type": kind}
    if description:
        result["description"] = _first_sentence(description)
    if "enum" in node:
        result["enum"] = [v for v in node["enum"] if v is not None]
    if kind == "object":
        if "properties" in node:
            result["properties"] = {name: _convert(sub, defs, seen) for name, sub in sorted(node["properties"].items())}
            if node.get("required"):
                result["required"] = sorted(node["required"])
        elif isinstance(node.get("additionalProperties"), dict):
            result["additionalProperties"] = _convert(node["additionalProperties"], defs, seen)
        else:
            result["x-kubernetes-preserve-unknown-fields"] = True  # an opaque object (none in a pod today)
    elif kind == "array":
        result["items"] = _convert(node["items"], defs, seen)
    return result


def load_definitions(kubernetes: str) -> dict[str, Any]:
    """The upstream definitions of a Kubernetes release, from the kubernetes-validate package."""
    import kubernetes_validate  # noqa: PLC0415 - only needed to regenerate

    path = (pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
            / f"v{kubernetes}.0-local" / "_definitions.json")
    document = json.loads(path.read_text())
    return document.get("$defs") or document["definitions"]


def generate(kubernetes: str = KUBERNETES_VERSION) -> dict[str, Any]:
    """The structural schema of a Workload's ``spec.template``."""
    defs = load_definitions(kubernetes)
    schema = _convert({"$ref": "#/$defs/io.k8s.api.core.v1.PodTemplateSpec"}, defs, ())
    schema["properties"]["metadata"]["description"] = "Labels and annotations added to each pod (the operator names, owns and labels the pod)."
    schema["description"] = (
        f"A Kubernetes PodTemplateSpec (core/v1, Kubernetes {kubernetes}) from which each pod is built; "
        "the short fields fill the container named main. See the README's table of how they combine."
    )
    return schema


def render(kubernetes: str = KUBERNETES_VERSION) -> str:
    return json.dumps(generate(kubernetes), indent=1, sort_keys=True) + "\n"


@functools.cache
def template_schema() -> dict[str, Any]:
    """The shipped schema (what the CRD carries at ``spec.template`` and what the operator checks)."""
    return json.loads(importlib.resources.files("workload_operator").joinpath("schemas", SCHEMA_FILE).read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workload_operator.podschema", description=__doc__.split("\n")[0])
    parser.add_argument("--kubernetes", default=KUBERNETES_VERSION, help="release, e.g. 1.33 (default %(default)s)")
    sys.stdout.write(render(parser.parse_args(argv).kubernetes))


if __name__ == "__main__":
    main()
