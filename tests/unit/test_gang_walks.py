"""Random walks of pod events over gangs: whatever the kubelet, the nodes and other people do to N pods,
decide() stays on the map, writes only with a reason to, and leaves no pod running once the workload ends; once it
has ended, every finished pod is retired from the watch (kept for its logs), and only those."""

import dataclasses
import datetime

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.test_decide import NOW, view
from workload_operator.lifecycle import TERMINAL, State, can_transition
from workload_operator.lifecycle.decide import (
    AddFinalizer, CreatePod, DeletePod, Policy, RemoveFinalizer, RetirePod, WorkloadView, decide,
)
from workload_operator.lifecycle.gang import attempt_pod_names, holds_resources
from workload_operator.lifecycle.pods import summarize_pod

POLICY = Policy(backoff_base=1, backoff_cap=4, force_delete_after=5)
MAX_STEPS = 30
EVENTS = ("start", "ready", "exit0", "exit1", "oom", "evicted", "node-lost", "deleted", "confirm", "later")
LIKELY = (*EVENTS, "start", "start", "ready", "exit0", "exit0", "confirm")  # the usual course comes more often
EVERY_POD = 8  # ``which``: the event happens to every pod at once (a gang mostly moves together)


@dataclasses.dataclass
class Pod:
    """A pod as the API server holds it, changed by the walk's kubelet and by deletes."""

    name: str
    uid: str
    phase: str = "Pending"
    main: dict | None = None
    ready: str = "False"
    reason: str = ""
    deletion: datetime.datetime | None = None
    retired: bool = False  # labelled out of the operator's watch: decide() no longer sees it

    def summary(self):
        status = {"phase": self.phase, "reason": self.reason, "conditions": [{"type": "Ready", "status": self.ready}],
                  "containerStatuses": [{"name": "main", "state": self.main}] if self.main else []}
        meta = {"name": self.name, "uid": self.uid}
        if self.deletion is not None:
            meta["deletionTimestamp"] = self.deletion.strftime("%Y-%m-%dT%H:%M:%SZ")
        return summarize_pod({"metadata": meta, "status": status})


class World:
    """The API server's pods of one Workload, and a clock."""

    def __init__(self, workload: WorkloadView) -> None:
        self.view, self.pods, self.now, self.made = workload, {}, NOW, 0

    def settle(self) -> None:
        """Decide and apply as the shell does until nothing is left to do now; check every write."""
        for _ in range(MAX_STEPS):
            watched = [p.summary() for p in self.pods.values() if not p.retired]
            decision = decide(self.view, watched, self.now, policy=POLICY)
            self.apply(decision)
            if not decision or (decision.status is None
                                and all(isinstance(a, DeletePod | RetirePod) for a in decision.actions)):
                return
        raise AssertionError(f"no steady state after {MAX_STEPS} steps in {self.view.status.state}")

    def apply(self, decision) -> None:
        for action in decision.actions:
            if isinstance(action, CreatePod):
                name = attempt_pod_names(self.view.name, action.attempt, self.view.replicas)[action.index]
                if name not in self.pods:  # else: 409, the pod is the workload's own: used as it is
                    self.made += 1
                    self.pods[name] = Pod(name, f"uid-{self.made}")
            elif isinstance(action, DeletePod):
                pod = self.pods.get(action.name)
                if pod is not None and pod.uid == action.uid:  # the uid precondition
                    if action.force or pod.main is None:  # grace 0, or never started (no node): gone at once
                        del self.pods[action.name]
                    elif pod.deletion is None:  # on a node: it waits for its kubelet to confirm
                        pod.deletion = self.now
            elif isinstance(action, RetirePod):
                pod = self.pods[action.name]
                assert self.view.status.state in TERMINAL and pod.uid == action.uid and not pod.retired
                assert pod.phase in ("Succeeded", "Failed") and pod.deletion is None
                pod.retired = True
            elif isinstance(action, (AddFinalizer, RemoveFinalizer)):
                pass
        if decision.status is not None:
            old, new = self.view.status, decision.status
            if new.state != old.state:
                assert can_transition(old.state, new.state), (old.state, new.state)
                assert new.transitions == old.transitions + 1 and new.history[-1].to_state == new.state
            else:  # no transition: a write must say something new, never only the pod counts
                assert (new.reason, new.message, new.conditions, new.attempts) != (
                    old.reason, old.message, old.conditions, old.attempts)
            self.view = dataclasses.replace(self.view, status=new)

    def happen(self, event: str, which: int) -> None:
        if event == "later":
            self.now += datetime.timedelta(seconds=7)
            return
        pods = sorted(self.pods.values(), key=lambda p: p.name)
        for pod in pods if which == EVERY_POD else pods[which % len(pods):][:1] if pods else ():
            self.happen_to(pod, event)

    def happen_to(self, pod: Pod, event: str) -> None:
        if event == "confirm":
            if pod.deletion is not None:
                del self.pods[pod.name]
            return
        if event == "deleted":
            pod.deletion = pod.deletion or self.now
            return
        if pod.deletion is not None or pod.phase in ("Succeeded", "Failed"):
            return  # the kubelet only moves pods that run or wait to
        if event == "start":
            pod.phase, pod.main = "Running", {"running": {"startedAt": "2026-11-23T12:00:00Z"}}
        elif event == "ready" and pod.phase == "Running":
            pod.ready = "True"
        elif event in ("exit0", "exit1", "oom") and pod.phase == "Running":
            code, reason = {"exit0": (0, "Completed"), "exit1": (1, "Error"), "oom": (137, "OOMKilled")}[event]
            pod.phase, pod.ready = ("Succeeded" if code == 0 else "Failed"), "False"
            pod.main = {"terminated": {"exitCode": code, "reason": reason,
                                       "finishedAt": self.now.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        elif event == "evicted":
            pod.phase, pod.reason, pod.ready = "Failed", "Evicted", "False"
        elif event == "node-lost":
            pod.ready = "Unknown"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replicas=st.integers(1, 5), kind=st.sampled_from(["batch", "leader", "service"]),
       events=st.lists(st.tuples(st.sampled_from(LIKELY), st.just(EVERY_POD) | st.integers(0, EVERY_POD - 1)),
                       min_size=5, max_size=60),
       cancel_at=st.none() | st.integers(0, 60))
def test_random_pod_events_over_a_gang(replicas, kind, events, cancel_at):
    spec = {"replicas": replicas, "maxAttempts": 3}
    if kind == "service":
        spec.update(type="service", port=80)
    elif kind == "leader":
        spec["successPolicy"] = "leader"
    world = World(view(None, spec=spec))
    world.settle()
    for step, (what, which) in enumerate(events):
        if step == cancel_at:
            world.view = dataclasses.replace(world.view, spec=world.view.spec.model_copy(update={"cancel": True}))
        world.happen(what, which)
        world.settle()
        state = world.view.status.state
        if state in (State.PREPARING, State.RUNNING, State.SERVING):
            # Never more than one attempt's worth of pods at work.
            assert sum(holds_resources(p.summary()) for p in world.pods.values()) <= replicas
        if state in TERMINAL:
            left = [p.name for p in world.pods.values() if holds_resources(p.summary())]
            assert not left, f"{state}: pods still running: {left}"
            watched = [p.name for p in world.pods.values()
                       if p.phase in ("Succeeded", "Failed") and p.deletion is None and not p.retired]
            assert not watched, f"{state}: finished pods still watched: {watched}"
    event(f"ended {world.view.status.state}")
