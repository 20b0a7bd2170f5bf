"""``spec.template``: its structural check, and the rules by which it combines with the short fields.

The API server checks the template against the CRD's generated schema (``workload_operator.podschema``);
the operator checks it against the same schema here, since an emulator or a cluster without the schema
passes anything, and then applies the combination rules, which no schema can say. Every problem is one
line that names the field (``spec.template.spec.volumes[0].name: …``). Pure: the schema is static data
shipped in the package, read once.
"""

from __future__ import annotations

from typing import Any

from workload_operator import GROUP
from workload_operator.podschema import template_schema

MAIN = "main"
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MAIN_PATH = "spec.template.spec.containers[main]"

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "integer": (int,), "number": (int, float), "object": (dict,), "array": (list,),
}


def _type_name(value: Any) -> str:
    for name, types in (("boolean", (bool,)), ("integer", (int,)), ("number", (float,)), ("string", (str,)),
                        ("object", (dict,)), ("array", (list,))):
        if isinstance(value, types):
            return name
    return "null"


def structural_problems(value: Any, schema: dict[str, Any] | None = None, path: str = "spec.template") -> list[str]:
    """What the API server's structural schema check (with strict field validation) would refuse."""
    schema = template_schema() if schema is None else schema
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: must be an integer or a string, not {_type_name(value)}"]
    kind = schema["type"]
    if not isinstance(value, _TYPES[kind]) or (kind in ("integer", "number") and isinstance(value, bool)):
        return [f"{path}: must be {kind}, not {_type_name(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: unsupported value {value!r}: one of {', '.join(map(repr, schema['enum']))}"]
    problems: list[str] = []
    if kind == "array":
        for index, item in enumerate(value):
            problems += structural_problems(item, schema["items"], f"{path}[{index}]")
    elif kind == "object" and "properties" in schema:
        for name in schema.get("required", ()):
            if name not in value:
                problems.append(f"{path}.{name}: required")
        for name, item in value.items():
            if name not in schema["properties"]:
                problems.append(f"{path}.{name}: unknown field")
            elif item is not None:  # null means "not set", as the API server treats it
                problems += structural_problems(item, schema["properties"][name], f"{path}.{name}")
    elif kind == "object" and "additionalProperties" in schema:
        for name, item in value.items():
            problems += structural_problems(item, schema["additionalProperties"], f"{path}.{name}")
    return problems


def main_container(template: dict[str, Any]) -> dict[str, Any] | None:
    containers = (template.get("spec") or {}).get("containers")
    if not isinstance(containers, list):
        return None
    return next((c for c in containers if isinstance(c, dict) and c.get("name") == MAIN), None)


IMAGE_REQUIRED = "spec.image or a container named main in spec.template.spec.containers is required"


def image_problems(raw: dict[str, Any]) -> list[str]:
    """The main container needs an image: the short field's or the template's own."""
    template = raw.get("template")
    main = main_container(template) if isinstance(template, dict) and isinstance(template.get("spec"), dict) else None
    return [] if "image" in raw or (isinstance(main, dict) and main.get("image")) else [IMAGE_REQUIRED]


def combination_problems(spec: Any) -> list[str]:
    """The rules by which ``spec.template`` and the short fields combine (the README's table).

    ``spec`` is a WorkloadSpec whose template passed the structural check.
    """
    template = spec.template or {}
    pod = template.get("spec") or {}
    main = main_container(template) or {}
    problems = []
    for field in ("image", "command", "args"):
        if getattr(spec, field) and main.get(field) is not None:
            problems.append(f"spec.{field} and {MAIN_PATH}.{field} are both set: set one")
    for var in spec.env:
        if any(e.get("name") == var.name for e in main.get("env") or []):
            problems.append(f"spec.env {var.name} and {MAIN_PATH}.env {var.name} are both set: set one")
    for kind, amounts in (("requests", spec.resources.requests), ("limits", spec.resources.limits)):
        for name in amounts:
            if name in ((main.get("resources") or {}).get(kind) or {}):
                problems.append(f"spec.resources.{kind}.{name} and {MAIN_PATH}.resources.{kind}.{name} are both set: set one")
    if spec.port is not None:
        for port in main.get("ports") or []:
            if port.get("name") == "http" and port.get("containerPort") != spec.port:
                problems.append(f"spec.port {spec.port} and {MAIN_PATH}.ports http {port.get('containerPort')} disagree")
    if spec.readiness_path is not None and main.get("readinessProbe") is not None:
        problems.append(f"spec.readinessPath and {MAIN_PATH}.readinessProbe are both set: set one")
    if main.get("terminationMessagePolicy", TERMINATION_MESSAGE_POLICY) != TERMINATION_MESSAGE_POLICY:
        problems.append(f"{MAIN_PATH}.terminationMessagePolicy: the operator's own ({TERMINATION_MESSAGE_POLICY}): "
                        "the last log lines become the failure message")
    if pod.get("restartPolicy", "Never") != "Never":
        problems.append("spec.template.spec.restartPolicy: the operator's own (Never): each pod runs once; "
                        "spec.maxAttempts says how many attempts may be started")
    token = pod.get("automountServiceAccountToken")
    if token is not None and token != spec.automount_service_account_token:
        problems.append("spec.template.spec.automountServiceAccountToken and spec.automountServiceAccountToken "
                        "disagree: set spec.automountServiceAccountToken")
    for name in (template.get("metadata") or {}).get("labels") or {}:
        if name == MANAGED_BY_LABEL or name.split("/", 1)[0] == GROUP:
            problems.append(f"spec.template.metadata.labels.{name}: the operator's own label")
    if spec.shm_size is not None:
        if any(v.get("name") == SHM_VOLUME for v in pod.get("volumes") or []):
            problems.append(f"spec.shmSize and spec.template.spec.volumes {SHM_VOLUME} are both set: "
                            f"rename the volume or drop shmSize")
        for group in ("initContainers", "containers"):
            for container in pod.get(group) or []:
                if any(m.get("mountPath") == SHM_PATH for m in container.get("volumeMounts") or []):
                    problems.append(f"spec.shmSize and spec.template.spec.{group}[{container.get('name')}]"
                                    f".volumeMounts {SHM_PATH} are both set: set one")
    names = [c.get("name") for group in ("initContainers", "containers") for c in pod.get(group) or []]
    names += [] if main_container(template) else [MAIN]  # the one the operator adds
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"spec.template.spec.containers: the name {name} is used twice")
    return problems
