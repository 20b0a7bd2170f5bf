"""A minimal Pod Security admission for the emulated API: what a namespace's
``pod-security.kubernetes.io/enforce`` label refuses, with the real server's message.

It checks the controls a Workload's template can reach that matter most (not every control of the
Pod Security Standards, and no ``enforce-version`` other than latest):

- baseline: privileged containers, hostNetwork / hostPID / hostIPC, hostPath volumes, host ports;
- restricted, in addition: allowPrivilegeEscalation != false, runAsNonRoot != true, capabilities that do
  not drop ALL, a seccompProfile other than RuntimeDefault or Localhost.

The message is the API server's (staging/src/k8s.io/pod-security-admission):
``pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged (container "main" must not
set securityContext.privileged=true), …``.
"""

from __future__ import annotations

from typing import Any

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _names(containers: list[dict[str, Any]]) -> str:
    quoted = ", ".join(f'"{c.get("name")}"' for c in containers)
    return f"container {quoted}" if len(containers) == 1 else f"containers {quoted}"


def _baseline(spec: dict[str, Any]) -> list[str]:
    problems = []
    host = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    if host:
        problems.append(f"host namespaces ({', '.join(host)})")
    privileged = [c for c in _containers(spec) if (c.get("securityContext") or {}).get("privileged")]
    if privileged:
        problems.append(f"privileged ({_names(privileged)} must not set securityContext.privileged=true)")
    host_path = [v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_path:
        problems.append(f"hostPath volumes ({'volume' if len(host_path) == 1 else 'volumes'} "
                        f"{', '.join(f'{n!r}'.replace(chr(39), chr(34)) for n in host_path)})")
    ports = [c for c in _containers(spec) if any(p.get("hostPort") for p in c.get("ports") or [])]
    if ports:
        problems.append(f"hostPort ({_names(ports)} uses hostPorts)")
    return problems


def _restricted(spec: dict[str, Any]) -> list[str]:
    problems = []
    pod = spec.get("securityContext") or {}
    containers = _containers(spec)
    escalation = [c for c in containers if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False]
    if escalation:
        problems.append(f"allowPrivilegeEscalation != false ({_names(escalation)} must set "
                        "securityContext.allowPrivilegeEscalation=false)")
    capabilities = [c for c in containers
                    if "ALL" not in (((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or [])]
    if capabilities:
        problems.append(f'unrestricted capabilities ({_names(capabilities)} must set securityContext.capabilities.drop=["ALL"])')
    if pod.get("runAsNonRoot") is not True:
        root = [c for c in containers if (c.get("securityContext") or {}).get("runAsNonRoot") is not True]
        if root:
            problems.append(f"runAsNonRoot != true (pod or {_names(root)} must set securityContext.runAsNonRoot=true)")
    if ((pod.get("seccompProfile") or {}).get("type")) not in ("RuntimeDefault", "Localhost"):
        unset = [c for c in containers
                 if ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost")]
        if unset:
            problems.append(f'seccompProfile (pod or {_names(unset)} must set securityContext.seccompProfile.type to '
                            '"RuntimeDefault" or "Localhost")')
    return problems


def violations(namespace: dict[str, Any] | None, pod: dict[str, Any]) -> str | None:
    """The admission's refusal of ``pod`` in ``namespace``, or None when the namespace's level allows it."""
    level = (((namespace or {}).get("metadata") or {}).get("labels") or {}).get(ENFORCE_LABEL, "privileged")
    if level not in LEVELS or level == "privileged":
        return None
    spec = pod.get("spec") or {}
    problems = _baseline(spec) + (_restricted(spec) if level == "restricted" else [])
    if not problems:
        return None
    name = (pod.get("metadata") or {}).get("name", "")
    return f'pods "{name}" is forbidden: violates PodSecurity "{level}:latest": {", ".join(problems)}'
