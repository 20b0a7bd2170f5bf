"""decide() over gangs: N pods per attempt, one lifecycle (the rules table of docs/lifecycle.md, "Gangs")."""

import dataclasses
import datetime

import pytest

from tests.unit.test_decide import NOW, RUNNING, exited, view
from workload_operator.lifecycle import State
from workload_operator.lifecycle.decide import (
    CreatePod, CreateService, CreationRefusal, DeletePod, DeleteRetiredPods, DeleteService, Policy, RemoveFinalizer,
    RetirePod, creation_failed, decide,
)
from workload_operator.lifecycle.gang import attempt_pod_names, pod_name, summarize_pods
from workload_operator.lifecycle.pods import PodSummary, summarize_pod

GANG = {"replicas": 4}
READY = [{"type": "Ready", "status": "True"}]
LOST = [{"type": "Ready", "status": "Unknown"}]


def member(index, phase="Running", *, main=RUNNING, attempt=1, conditions=(), deleting=False, reason="",
           finished="2026-11-23T11:30:00Z"):
    status = {"phase": phase, "reason": reason, "conditions": list(conditions)}
    if main is not None:
        if "terminated" in main:
            main = {"terminated": {**main["terminated"], "finishedAt": finished}}
        status["containerStatuses"] = [{"name": "main", "state": main}]
    meta = {"name": pod_name("train", attempt, index), "uid": f"p{attempt}-{index}",
            **({"deletionTimestamp": "2026-11-23T12:00:00Z"} if deleting else {})}
    return summarize_pod({"metadata": meta, "status": status})


def gang(*overrides, size=4, **common):
    """A gang of ``size`` running pods, with some replaced: gang(member(2, "Failed", …))."""
    pods = {p.name: p for p in (member(i, **common) for i in range(size))}
    pods.update({p.name: p for p in overrides if p is not None})
    return tuple(pods.values())


def without(pods, *indexes):
    names = {pod_name("train", 1, i) for i in indexes}
    return tuple(p for p in pods if p.name not in names)


def names(*indexes, attempt=1):
    return [pod_name("train", attempt, i) for i in indexes]


OOM = exited(137, "OOMKilled")
PENDING = {"waiting": {"reason": "ContainerCreating"}}


# (id, spec, state, pods, expected state or None, reason, pods deleted)
RULES = [
    ("queued-creates-the-whole-gang", {}, "queued", (), "preparing", "PodsCreated", []),
    ("preparing-waits-for-every-pod", {}, "preparing", gang(member(3, "Pending", main=PENDING)), None, None, []),
    ("preparing-all-started", {}, "preparing", gang(), "running", "Started", []),
    ("preparing-a-pod-failed", {}, "preparing", gang(member(1, "Failed", main=exited(1, "Error")), *(
        member(i, "Pending", main=PENDING) for i in (0, 2, 3))), "failed", "ExitCode", names(0, 2, 3)),
    ("preparing-a-pod-vanished-the-rest-go-first", {}, "preparing", without(gang(), 2), None, None, names(0, 1, 3)),
    ("running-waits-for-every-pod", {}, "running", gang(member(0, "Succeeded", main=exited(0))), None, None, []),
    ("running-all-exited-0", {}, "running", gang(*(member(i, "Succeeded", main=exited(0)) for i in range(4))),
     "collecting", "Succeeded", []),
    ("running-leader-policy-index-0-is-enough", {"successPolicy": "leader"}, "running",
     gang(member(0, "Succeeded", main=exited(0))), "collecting", "Succeeded", names(1, 2, 3)),
    ("running-leader-policy-others-do-not-count", {"successPolicy": "leader"}, "running",
     gang(member(1, "Succeeded", main=exited(0))), None, None, []),
    ("running-one-rank-oom", {}, "running", gang(member(2, "Failed", main=OOM)), "failed", "OOMKilled", names(0, 1, 3)),
    ("running-one-pod-lost", {}, "running", gang(member(1, conditions=LOST)), "orphaned", "NodeLost", names(0, 1, 2, 3)),
    ("running-one-pod-deleted", {}, "running", without(gang(), 3), "orphaned", "PodDeleted", names(0, 1, 2)),
    ("running-lost-beats-failed", {}, "running", gang(member(0, "Failed", main=OOM), member(3, "Failed", reason="Evicted")),
     "orphaned", "Evicted", names(0, 1, 2, 3)),
    ("cancel-deletes-every-pod", {"cancel": True}, "running", gang(), None, None, names(0, 1, 2, 3)),
    ("cancel-ends-once-all-are-gone", {"cancel": True}, "running", (), "cancelled", "Cancelled", []),
    ("serving-needs-the-leader-ready", {"type": "service", "port": 80}, "running", gang(member(1, conditions=READY)),
     None, None, []),
    ("serving-when-the-leader-is-ready", {"type": "service", "port": 80}, "running", gang(member(0, conditions=READY)),
     "serving", "Ready", []),
    ("serving-leader-exits-stops-the-others", {"type": "service", "port": 80}, "serving",
     gang(member(0, "Succeeded", main=exited(0))), "stopping", "ServerExited", names(1, 2, 3)),
    ("stopping-waits-for-every-pod", {"type": "service", "port": 80}, "stopping",
     gang(member(0, "Succeeded", main=exited(0)), *(member(i, deleting=True) for i in (1, 2, 3))), None, None, []),
    ("stopping-completes-when-all-stopped", {"type": "service", "port": 80}, "stopping",
     gang(*(member(i, "Failed", main=exited(143)) for i in range(4))), "completed", "Stopped", names(0, 1, 2, 3)),
]


@pytest.mark.parametrize(("case", "spec", "state", "pods", "to_state", "reason", "deleted"), RULES,
                         ids=[r[0] for r in RULES])
def test_gang_rules(case, spec, state, pods, to_state, reason, deleted):
    workload = view(state, spec={**GANG, **spec})
    decision = decide(workload, pods, NOW)
    if to_state is None:
        assert decision.status is None or decision.status.state.value == state
    else:
        assert (decision.status.state, decision.status.reason) == (State(to_state), reason)
    gone = [a.name for a in decision.actions if isinstance(a, DeletePod)]
    # An ending transition is written first; the state it leads to deletes the pods (orphaned: via queued).
    while to_state in ENDINGS and decision.status is not None:
        workload = dataclasses.replace(workload, status=decision.status)
        decision = decide(workload, pods, NOW)
        gone += [a.name for a in decision.actions if isinstance(a, DeletePod)]
    assert sorted(gone) == sorted(deleted)


ENDINGS = ("failed", "orphaned", "collecting", "stopping")


def test_an_ending_is_written_before_the_pods_go():
    """A crash between the two must never show the operator's own deletes before the status that explains them:
    a pod it deleted would look lost (a failed gang would be orphaned, index 0's success taken for a loss)."""
    running = view("running", spec={**GANG, "successPolicy": "leader"})
    done = decide(running, gang(member(0, "Succeeded", main=exited(0))), NOW)
    assert done.status.state is State.COLLECTING and not done.actions
    oom = decide(running, gang(member(2, "Failed", main=OOM)), NOW)
    assert oom.status.state is State.FAILED and not oom.actions


def test_a_new_attempt_creates_every_pod_and_a_headless_service_and_counts_them():
    decision = decide(view("queued", spec=GANG), (), NOW)
    assert decision.actions == (CreateService(headless=True), *(CreatePod(1, i) for i in range(4)))
    status = decision.status
    assert (status.attempts, status.run.pod, status.pods.active, status.pods_ready) == (1, "train-1-0", 4, "0/4")
    assert status.message == "4 pods created: train-1-0 … train-1-3"


def test_a_service_gang_has_its_service_and_the_headless_one():
    decision = decide(view("queued", spec={**GANG, "type": "service", "port": 80}), (), NOW)
    assert decision.actions[:2] == (CreateService(), CreateService(headless=True))
    released = decide(view("completed", spec={**GANG, "type": "service", "port": 80}, deleting=True), (), NOW)
    assert released.actions == (DeleteRetiredPods(tuple(names(0, 1, 2, 3))), DeleteService(), DeleteService(headless=True),
                                RemoveFinalizer())


def test_the_failure_names_the_pod_that_failed_first():
    first = member(3, "Failed", main=OOM, finished="2026-11-23T11:10:00Z")
    then = member(0, "Failed", main=exited(1, "Error"), finished="2026-11-23T11:11:00Z")  # NCCL broke: a consequence
    decision = decide(view("running", spec=GANG), gang(first, then), NOW)
    assert decision.status.reason == "OOMKilled"
    assert decision.status.message.startswith("pod train-1-3: the main container ran out of memory")
    assert decision.status.run.pod == "train-1-3"
    # Finished pods stay, for their logs; the two still running go (next, from failed): no GPU is held by a
    # gang that cannot succeed. They are counted as gone already: this is the workload's last write.
    assert (decision.status.pods.active, decision.status.pods.failed) == (0, 2)
    failed = decide(dataclasses.replace(view("running", spec=GANG), status=decision.status), gang(first, then), NOW)
    assert sorted(a.name for a in failed.actions if isinstance(a, DeletePod)) == names(1, 2) and failed.status is None
    # The two that failed are kept for their logs, out of the operator's watch.
    assert sorted(a.name for a in failed.actions if isinstance(a, RetirePod)) == names(0, 3)


def test_a_replaced_gang_is_created_only_once_the_old_one_is_gone():
    preparing = view("preparing", spec=GANG)
    # Index 2 vanished: the rest are deleted, and which one vanished is noted while it can still be told.
    vanished = decide(preparing, without(gang(), 2), NOW)
    assert sorted(a.name for a in vanished.actions) == names(0, 1, 3)
    assert (vanished.status.state, vanished.status.reason) == (State.PREPARING, "PodLost")
    assert vanished.status.message == "pod train-1-2: the pod vanished"
    assert vanished.status.pods.active == 0  # counted as they stand once the deletes ran
    noted = dataclasses.replace(preparing, status=vanished.status)
    going = (member(1, "Pending", main=PENDING, deleting=True),)  # index 0 is gone already: still index 2's fault
    assert not decide(noted, going, NOW)  # deleted, not gone yet: wait, and write nothing new
    recreated = decide(noted, (), NOW)
    assert recreated.actions == tuple(CreatePod(2, i) for i in range(4))
    assert (recreated.status.state, recreated.status.reason, recreated.status.attempts) == (State.PREPARING, "PodRecreated", 2)
    assert recreated.status.message == "pod train-1-2: the pod vanished while preparing; 4 pods created: train-2-0 … train-2-3"


def test_requeued_gang_waits_for_the_lost_pods_before_the_next_attempt():
    queued = view("queued", spec=GANG, attempts=1)
    lingering = (member(2, deleting=True),)
    waiting = decide(queued, lingering, NOW)
    assert not waiting.actions and waiting.status is None and waiting.recheck_at is not None
    overdue = decide(queued, lingering, NOW + datetime.timedelta(hours=1))  # its node is gone: nothing confirms
    assert overdue.actions == (DeletePod("train-1-2", "p1-2", force=True),)
    assert decide(queued, (), NOW + datetime.timedelta(hours=1)).actions[1:] == tuple(CreatePod(2, i) for i in range(4))


def test_counts_ride_along_with_writes_and_never_cost_one():
    running = view("running", spec=GANG)
    assert not decide(running, gang(member(1, conditions=READY)), NOW)  # one more pod ready: no write
    ended = decide(running, gang(*(member(i, "Succeeded", main=exited(0), conditions=()) for i in range(4))), NOW)
    assert (ended.status.pods.succeeded, ended.status.pods.active, ended.status.pods_ready) == (4, 0, "0/4")


def test_a_refused_pod_takes_the_gang_made_so_far_with_it():
    queued = view("queued", spec=GANG)
    made = tuple(member(i, "Pending", main=PENDING) for i in (0, 1))  # pod 2 was refused (a quota)
    refused = creation_failed(queued, CreationRefusal.REFUSED, "exceeded quota", NOW, pods=made)
    assert sorted(a.name for a in refused.actions) == names(0, 1)
    assert (refused.status.state, refused.status.reason) == (State.QUEUED, "PodCreationFailed")
    single = creation_failed(view("queued"), CreationRefusal.REFUSED, "exceeded quota", NOW,
                             pods=(summarize_pod({"metadata": {"name": "train-1"}}),))
    assert not single.actions  # one pod: nothing was made


def test_one_replica_keeps_its_names_and_messages():
    assert attempt_pod_names("train", 2, 1) == ("train-2",)
    assert attempt_pod_names("train", 2, 3) == ("train-2-0", "train-2-1", "train-2-2")
    decision = decide(view("queued"), (), NOW)
    assert (decision.actions, decision.status.message, decision.status.pods_ready) == (
        (CreatePod(1),), "pod train-1 created", "0/1")


def test_summary_walks_the_pods_once_into_one_view():
    pods = (*gang(member(1, conditions=READY), member(2, "Succeeded", main=exited(0)), member(3, "Pending", main=PENDING)),
            member(0, attempt=2))  # made for the next attempt, never committed
    summary = summarize_pods("train", 1, 4, pods)
    assert (summary.started, summary.active, summary.ready, summary.succeeded, summary.failed) == (3, 3, 1, 1, 0)
    assert [p.name for p in summary.others] == ["train-2-0"] and summary.missing == () and summary.leader.name == "train-1-0"


def test_each_pod_of_a_gang_knows_its_place_and_where_index_0_answers():
    from workload_operator.manifests import INDEX_LABEL, headless_service_manifest, pod_manifest, service_manifest
    workload = view("queued", spec={**GANG, "env": [{"name": "MASTER_PORT", "value": "1234"}]})
    pod = pod_manifest(workload, workload.spec, 2, 3)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert pod["metadata"]["name"] == "train-2-3"
    assert pod["metadata"]["labels"][INDEX_LABEL] == pod["metadata"]["annotations"][INDEX_LABEL] == "3"
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("worker-3", "train")
    assert env["PET_MASTER_ADDR"] == env["MASTER_ADDR"] == "worker-0.train.ml.svc"
    assert (env["PET_NNODES"], env["PET_NODE_RANK"], env["WORLD_SIZE"], env["RANK"]) == ("4", "3", "4", "3")
    assert env["MASTER_PORT"] == env["PET_MASTER_PORT"] == "1234"  # the user's port, for both names
    assert [e["name"] for e in pod["spec"]["containers"][0]["env"]].count("MASTER_PORT") == 1
    headless = headless_service_manifest(workload)
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    server = view("queued", spec={**GANG, "type": "service", "port": 80})
    assert service_manifest(server, server.spec)["spec"]["selector"][INDEX_LABEL] == "0"  # it fronts index 0
    assert headless_service_manifest(server)["metadata"]["name"] == "train-gang"
    single = view("queued")
    alone = pod_manifest(single, single.spec, 1)
    assert "hostname" not in alone["spec"] and "env" not in alone["spec"]["containers"][0]
    assert "annotations" not in alone["metadata"]


@pytest.mark.parametrize("replicas", [1, 4])
@pytest.mark.parametrize("how", ["evicted", "node-lost"])
def test_a_pod_lost_before_the_run_started_restarts_the_attempt(replicas, how):
    pending = dict(phase="Pending", main=PENDING)
    lost = dict(phase="Failed", reason="Evicted") if how == "evicted" else dict(conditions=LOST, **pending)
    pods = gang(member(replicas - 1, **lost), *(member(i, **pending) for i in range(replicas - 1)), size=replicas)
    if replicas == 1:  # a single pod keeps its name
        pods = (summarize_pod({"metadata": {"name": "train-1", "uid": "p"}, "status": {
            "phase": lost["phase"], "reason": lost.get("reason", ""), "conditions": list(lost.get("conditions", ()))}}),)
    preparing = view("preparing", spec={"replicas": replicas})
    deleting = decide(preparing, pods, NOW)
    # Not failed (the infrastructure's doing): noted, and the whole gang goes first.
    assert (deleting.status.state, deleting.status.reason) == (State.PREPARING, "PodLost")
    assert sorted(a.name for a in deleting.actions) == sorted(p.name for p in pods)
    recreated = decide(dataclasses.replace(preparing, status=deleting.status), (), NOW)  # then a new attempt
    assert (recreated.status.reason, recreated.status.attempts) == ("PodRecreated", 2)
    assert recreated.status.message.startswith(deleting.status.message + " while preparing; ")


def test_a_lone_pod_deleted_by_someone_else_while_preparing_is_waited_for_without_a_write_then_recreated():
    # The API server writes the pod's deletionTimestamp before it removes it, even one it removes at once.
    going = (summarize_pod({"metadata": {"name": "train-1", "uid": "p", "deletionTimestamp": "2026-11-23T12:00:00Z",
                                         "deletionGracePeriodSeconds": 0}, "status": {"phase": "Pending"}}),)
    preparing = view("preparing")
    waiting = decide(preparing, going, NOW)
    assert waiting.actions == () and waiting.status is None  # nothing to delete, nothing to note: no write
    recreated = decide(preparing, (), NOW)
    assert (recreated.status.reason, recreated.status.attempts) == ("PodRecreated", 2)
    assert recreated.actions == (CreatePod(2, 0),)


def test_a_pod_deleted_with_grace_0_is_deleted_again_only_when_left_half_deleted():
    # The API server writes deletionTimestamp and grace 0 even for a pod it removes at once; a pod still there a
    # margin later with no finalizer was left half-deleted (its deleter gone mid-request), and only a DELETE ends it.
    policy = Policy(force_delete_after=30)
    just_now, long_ago = (NOW - datetime.timedelta(seconds=s) for s in (1, 60))
    stopping = view("running", spec={"cancel": True})

    def pod(deleted_at: datetime.datetime, **meta: object) -> PodSummary:
        return summarize_pod({"metadata": {"name": "train-1", "uid": "p", **meta,
                                           "deletionTimestamp": deleted_at.strftime("%Y-%m-%dT%H:%M:%SZ")}})

    removed_at_once = decide(stopping, (pod(just_now, deletionGracePeriodSeconds=0),), NOW, policy=policy)
    assert removed_at_once.actions == () and removed_at_once.recheck_at == just_now + datetime.timedelta(seconds=31)
    half_deleted = decide(stopping, (pod(long_ago, deletionGracePeriodSeconds=0),), NOW, policy=policy)
    assert half_deleted.actions == (DeletePod("train-1", "p", force=True),) and half_deleted.status is None
    held = decide(stopping, (pod(long_ago, deletionGracePeriodSeconds=0, finalizers=["example.com/keep"]),), NOW,
                  policy=policy)
    assert held.actions == () and held.recheck_at is None  # its finalizer's owner lets go; its event comes then
    stopping_server = decide(view("stopping", spec={"type": "service", "port": 8000}),
                             (pod(long_ago, deletionGracePeriodSeconds=0),), NOW, policy=policy)
    assert stopping_server.actions == (DeletePod("train-1", "p", force=True),) and stopping_server.status is None
    graceful = decide(stopping, (pod(long_ago, deletionGracePeriodSeconds=30),), NOW, policy=policy)
    assert graceful.actions == (DeletePod("train-1", "p", force=True),)  # a graceful deletion overdue: forced
