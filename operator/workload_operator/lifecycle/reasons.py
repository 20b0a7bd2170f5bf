"""Reasons from pods, the kubelet and the scheduler, mapped into the status's reason vocabulary (pure).

``status.reason`` is machine-readable CamelCase (metav1.Condition's pattern, which the CRD enforces),
while the kubelet and the scheduler write free text there: ``OutOfnvidia.com/gpu``, ``OutOfephemeral-storage``.
Every reason the core takes from a pod goes through ``status_reason``: a reason it knows becomes the one
in ``KNOWN``; any other that fits the pattern is kept; anything else becomes the caller's fallback. The
original text is never lost: when the reason changed, the message starts with it.
"""

from __future__ import annotations

import re

from workload_operator.lifecycle.status import REASON_PATTERN

REASON_LIMIT = 128  # longer "reasons" are sentences, not reasons

# The kubelet's and scheduler's reasons the operator knows, and what each becomes in status.reason.
# Reasons not listed that fit the pattern are kept as they are.
KNOWN: dict[str, str] = {
    # The pod failed or was refused by the node (pod.status.reason)
    "Evicted": "Evicted",                      # node pressure: a lost worker, re-queued
    "NodeLost": "NodeLost",                    # the node stopped reporting: a lost worker
    "Terminated": "NodeShutdown",              # the kubelet's graceful node shutdown: a lost worker
    "DeadlineExceeded": "DeadlineExceeded",    # the pod's own activeDeadlineSeconds
    "NodeAffinity": "NodeAffinity",            # the node no longer matches the pod's affinity
    "UnexpectedAdmissionError": "UnexpectedAdmissionError",
    # Scheduling (the PodScheduled condition)
    "Unschedulable": "Unschedulable",
    "SchedulingGated": "SchedulingGated",
    # Images (the main container waiting)
    "ErrImagePull": "ErrImagePull",
    "ImagePullBackOff": "ImagePullBackOff",
    "InvalidImageName": "InvalidImageName",
    "ErrImageNeverPull": "ErrImageNeverPull",
    "RegistryUnavailable": "RegistryUnavailable",
    "SignatureValidationFailed": "SignatureValidationFailed",
    # Containers (waiting, or terminated)
    "CreateContainerConfigError": "CreateContainerConfigError",
    "CreateContainerError": "CreateContainerError",
    "RunContainerError": "RunContainerError",
    "PreStartHookError": "PreStartHookError",
    "PostStartHookError": "PostStartHookError",
    "ContainerCannotRun": "ContainerCannotRun",
    "CrashLoopBackOff": "CrashLoopBackOff",
    "OOMKilled": "OOMKilled",
    "Error": "Error",
    "Completed": "Completed",
    # Routine steps every pod passes: never written to the status (see ROUTINE)
    "ContainerCreating": "ContainerCreating",
    "PodInitializing": "PodInitializing",
}
# The node refused the pod for want of a resource: OutOfcpu, OutOfmemory, OutOfpods, OutOfnvidia.com/gpu, …
OUT_OF = "OutOf"
OUT_OF_RESOURCES = "OutOfResources"
# Waiting reasons that say nothing a person could act on: every pod passes them.
ROUTINE = frozenset({"ContainerCreating", "PodInitializing"})


def status_reason(raw: str, message: str, *, fallback: str) -> tuple[str, str]:
    """(reason, message) for the status from a reason and message written by the kubelet or the scheduler."""
    raw = raw.strip()
    if raw in KNOWN:
        reason = KNOWN[raw]
    elif raw.startswith(OUT_OF):
        reason = OUT_OF_RESOURCES
    elif len(raw) <= REASON_LIMIT and re.fullmatch(REASON_PATTERN, raw):
        reason = raw
    else:
        reason = fallback
    if raw and reason != raw:
        message = f"{raw}: {message}" if message else raw
    return reason, message
