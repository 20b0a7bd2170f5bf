"""A workload's pods, summarized once into the one view every lifecycle rule reads (pure).

An attempt is a gang of ``spec.replicas`` pods, indexed 0…N-1, that starts, runs and ends as one. Like the
Job controller's sync context, ``summarize_pods`` walks the pod list once: which pods of the current attempt
exist (by index), which belong to other attempts, the counts shown in status, and the two facts that end an
attempt early: the first pod lost to the infrastructure and the first pod that failed on its own. The state
rules in ``decide`` then read that one value instead of walking pods again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Iterable, Mapping

from workload_operator.lifecycle.pods import PodSummary
from workload_operator.lifecycle.reasons import status_reason
from workload_operator.lifecycle.status import PodCounts

NAME_LIMIT = 253  # a pod's name is a DNS subdomain, as a Workload's is


def pod_name(workload: str, attempt: int, index: int | None = None) -> str:
    """``<workload>-<attempt>``, or ``<workload>-<attempt>-<index>`` in a gang: each attempt has its own names, so a
    lost pod is never mistaken for its successor.

    For a workload name near the limit, its tail gives way to a stable hash of the whole name, so that every
    Workload name the CRD accepts makes a valid pod name, and two long names never make the same one.
    """
    suffix = f"-{attempt}" if index is None else f"-{attempt}-{index}"
    if len(workload) + len(suffix) <= NAME_LIMIT:
        return workload + suffix
    digest = hashlib.sha256(workload.encode()).hexdigest()[:10]
    keep = NAME_LIMIT - len(f"-{digest}{suffix}")
    return f"{workload[:keep].rstrip('-.')}-{digest}{suffix}"


def attempt_pod_names(workload: str, attempt: int, replicas: int) -> tuple[str, ...]:
    """The names of an attempt's pods, by index; a single pod keeps the name it always had (no index)."""
    if replicas == 1:
        return (pod_name(workload, attempt),)
    return tuple(pod_name(workload, attempt, index) for index in range(replicas))


# --- how a pod ends -----------------------------------------------------------------------------


KUEUE_GATE_PREFIX = "kueue.x-k8s.io/"  # Kueue's scheduling gates: admission, topology
KUEUE_EVICTION_PREFIX = "WorkloadEvictedDueTo"  # Kueue's TerminationTarget reasons: …Preempted, …PodsReadyTimeout
EVICTED_BY_KUEUE = "EvictedByKueue"


def held_by_kueue(pod: PodSummary) -> bool:
    """Kueue has not admitted the pod yet: one of its scheduling gates is still on it."""
    return any(gate.startswith(KUEUE_GATE_PREFIX) for gate in pod.gates)


def loss_of(pod: PodSummary | None) -> tuple[str, str] | None:
    """The (reason, message) of a worker lost to the infrastructure, not the user's failure, or None:

    1. the pod is gone → PodDeleted;
    2. Kueue stopped its group (TerminationTarget WorkloadEvictedDueTo…: preempted, evicted) → EvictedByKueue;
    3. it carries DisruptionTarget=True (preemption, eviction API, taint manager) → its reason;
    4. it is being deleted, and not by the operator → PodDeleted;
    5. the kubelet evicted it (node pressure) → Evicted;
    6. the kubelet stopped it for a node shutdown (reason Terminated) → NodeShutdown;
    7. its node stopped reporting (Ready=Unknown, or reason NodeLost) → NodeLost.
    Whoever deletes a pod says why first, with a condition: that reason wins over the deletion itself.
    """
    if pod is None:
        return "PodDeleted", "the pod was deleted by someone else"
    if pod.disruption.startswith(KUEUE_EVICTION_PREFIX):
        why = pod.disruption.removeprefix(KUEUE_EVICTION_PREFIX)
        return EVICTED_BY_KUEUE, f"Kueue stopped the attempt ({why}){': ' + pod.message if pod.message else ''}"
    if pod.disruption:
        return status_reason(pod.disruption, pod.message or f"the pod was disrupted ({pod.disruption})",
                             fallback="Disrupted")
    if pod.deleting:
        return "PodDeleted", "the pod was deleted by someone else"
    if pod.reason == "Evicted":
        return "Evicted", pod.message or "the kubelet evicted the pod"
    if pod.reason == "Terminated":
        return status_reason(pod.reason, pod.message or "the node shut down", fallback="NodeShutdown")
    if pod.ready is None or pod.reason == "NodeLost":
        return "NodeLost", pod.message or "the pod's node stopped reporting"
    return None


def failure_of(pod: PodSummary) -> tuple[str, str] | None:
    """The (reason, message) of a pod that failed, or None. Criteria, in order:

    1. the main container was OOM-killed → OOMKilled;
    2. the main container exited non-zero → ExitCode, with the code and its last words;
    3. the pod failed otherwise (e.g. DeadlineExceeded, OutOfnvidia.com/gpu) → the pod's reason as a status
       reason (reasons.py: OutOfResources for the latter), or PodFailed.
    """
    main = pod.main
    if main.terminated and main.exit_code not in (0, None):
        words = f": {main.message.strip()}" if main.message.strip() else ""
        if main.reason == "OOMKilled":
            return "OOMKilled", f"the main container ran out of memory (exit code {main.exit_code}){words}"
        return "ExitCode", f"the main container exited with code {main.exit_code}{words}"
    if pod.phase == "Failed":
        return status_reason(pod.reason, pod.message or f"pod {pod.name} failed", fallback="PodFailed")
    return None


def succeeded(pod: PodSummary) -> bool:
    """The main container exited 0 (the pod Succeeded, or sidecars still run)."""
    return (pod.main.terminated and pod.main.exit_code == 0) or pod.phase == "Succeeded"


def started(pod: PodSummary) -> bool:
    return pod.main.running or pod.main.terminated or pod.phase in ("Running", "Succeeded")


def is_ready(pod: PodSummary) -> bool:
    return bool(pod.ready) and not pod.deleting


def holds_resources(pod: PodSummary) -> bool:
    """Still running or waiting to (the Job controller's "active"): not finished and not going away."""
    return pod.phase not in ("Succeeded", "Failed") and not pod.deleting


# --- the gang -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ending:
    """Why an attempt ends early: the pod (None when it is gone), a status reason and a message naming it."""

    pod: PodSummary | None
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Gang:
    """The pods of one workload, as the rules need them."""

    size: int                                  # spec.replicas: pods per attempt
    names: tuple[str, ...]                     # the current attempt's pod names, by index
    members: Mapping[int, PodSummary]          # the current attempt's pods that exist, by index
    others: tuple[PodSummary, ...]             # pods of other attempts (lost ones going away, or made, never committed)
    started: int = 0                           # members whose main container has started (or ended)
    active: int = 0                            # members still running or waiting to
    ready: int = 0                             # members whose Ready condition is True
    succeeded: int = 0                         # members whose main container exited 0
    failed: int = 0                            # members that failed (on their own or not)
    loss: Ending | None = None                 # the first member (by index) lost to the infrastructure, a missing one included
    failure: Ending | None = None              # the member that failed first (by finish time) on its own

    @property
    def leader(self) -> PodSummary | None:
        """The pod of index 0: the one a service fronts, whose result is collected, and the rendezvous host."""
        return self.members.get(0)

    def counts(self, leaving: Collection[str] = ()) -> PodCounts:
        """The figures status shows, once the members named in ``leaving`` are deleted."""
        gone = [pod for pod in self.members.values() if pod.name in leaving]
        return PodCounts(active=self.active - sum(map(holds_resources, gone)), ready=self.ready - sum(map(is_ready, gone)),
                         succeeded=self.succeeded, failed=self.failed)

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(index for index in range(self.size) if index not in self.members)

    @property
    def pods(self) -> tuple[PodSummary, ...]:
        """Every pod of the workload: the members by index, then the others."""
        return (*(self.members[index] for index in sorted(self.members)), *self.others)


def summarize_pods(workload: str, attempt: int, replicas: int, pods: Iterable[PodSummary]) -> Gang:
    """One pass over the workload's pods: the current attempt's members by index, the others, and their figures.
    A pod named twice keeps its first summary (the shell lists the watched ones before its own notes of pods it made)."""
    names = attempt_pod_names(workload, attempt, replicas)
    index_of = {name: index for index, name in enumerate(names)}
    members: dict[int, PodSummary] = {}
    others: dict[str, PodSummary] = {}
    for pod in pods:
        index = index_of.get(pod.name)
        if index is None:
            others.setdefault(pod.name, pod)
        else:
            members.setdefault(index, pod)
    counts = dict(started=0, active=0, ready=0, succeeded=0, failed=0)
    loss: Ending | None = None
    failures: list[tuple[str, int, Ending]] = []
    for index, name in enumerate(names):
        pod = members.get(index)
        if pod is None:
            loss = loss or Ending(None, "PodDeleted", about(replicas, name, "the pod was deleted by someone else"))
            continue
        counts["started"] += started(pod)
        counts["active"] += holds_resources(pod)
        counts["ready"] += is_ready(pod)
        counts["succeeded"] += succeeded(pod)
        failed = failure_of(pod)
        counts["failed"] += failed is not None
        lost = loss_of(pod)
        if lost is not None:
            loss = loss or Ending(pod, lost[0], about(replicas, name, lost[1]))
        elif failed is not None:
            # The first to fail is the likely cause: the others often fail because it did (a collective op broke).
            failures.append((pod.main.finished_at or "~", index, Ending(pod, failed[0], about(replicas, name, failed[1]))))
    return Gang(size=replicas, names=names, members=members, others=tuple(others.values()),
                loss=loss, failure=min(failures, key=lambda f: f[:2])[2] if failures else None, **counts)


def about(replicas: int, name: str, message: str) -> str:
    """A message about one pod of a gang names it (alone, the pod is the workload's only one)."""
    return message if replicas == 1 else f"pod {name}: {message}"
