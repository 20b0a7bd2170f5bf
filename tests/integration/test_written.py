"""The shell's memory of its own writes (Runtime.written), without an API: a finished Workload's last write is
forgotten once the index holds it, and no reconcile then starts from anything older than that write; the TTL
and the release of a finished Workload work from the reduced view the index keeps of it; the watch events
that bring nothing newer than those writes are left out of kopf's stream; and so are the finished Workloads kopf
was never given that wait on nothing, which the shell holds instead."""

from __future__ import annotations

import dataclasses
import types

import kopf
import pytest

from tests.unit.test_decide import status_in
from workload_operator import GROUP, PLURAL
from workload_operator.handlers import (
    Runtime, create_pods, on_pod_event, on_workload_event, own_pods, pods_by_workload, workloads_by_uid,
)
from workload_operator.lifecycle.decide import FINALIZER, CreatePod, Policy, WorkloadView
from workload_operator.lifecycle.gang import pod_name
from workload_operator.lifecycle.pods import summarize_pod
from workload_operator.lifecycle.states import State

UID = "uid-train"


def workload(state: str, version: str, *, spec: dict | None = None, deleting: bool = False,
             finalizers: tuple[str, ...] = (FINALIZER,)) -> dict:
    status = status_in(state).model_dump(mode="json", by_alias=True, exclude_none=True)
    return {"apiVersion": "ml.lifecycle.dev/v1", "kind": "Workload",
            "metadata": {"name": "train", "namespace": "ml", "uid": UID, "resourceVersion": version,
                         "finalizers": list(finalizers),
                         **({"deletionTimestamp": "2026-11-23T12:00:00Z"} if deleting else {})},
            "spec": {"image": "busybox", **(spec or {})}, "status": status}


POD = {"metadata": {"name": pod_name("train", 1), "namespace": "ml", "uid": "uid-pod",
                    "ownerReferences": [{"apiVersion": "ml.lifecycle.dev/v1", "kind": "Workload", "name": "train",
                                         "uid": UID, "controller": True}]},
       "status": {"phase": "Succeeded", "containerStatuses": [
           {"name": "main", "state": {"terminated": {"exitCode": 0, "message": "{}"}}}]}}


class Api:
    """Records the operator's calls; answers the few that a finished Workload's TTL and release make."""

    def __init__(self, answers: dict[str, dict] | None = None) -> None:
        self.calls: list[tuple] = []
        self.answers = answers or {}

    async def delete_workload(self, view: WorkloadView) -> dict:
        self.calls.append(("delete_workload", view.namespace, view.name, view.uid))
        return self.answers["delete_workload"]

    async def remove_finalizer(self, view: WorkloadView) -> dict:
        self.calls.append(("remove_finalizer", view.namespace, view.name, view.uid, view.finalizers))
        return self.answers["remove_finalizer"]

    async def delete_pod(self, namespace: str, name: str, uid: str, *, force: bool = False) -> None:
        self.calls.append(("delete_pod", namespace, name, uid, force))

    async def retire_pod(self, namespace: str, name: str, uid: str) -> bool:
        self.calls.append(("retire_pod", namespace, name, uid))
        return True

    async def delete_retired_pods(self, namespace: str, names: tuple[str, ...], owner_uid: str) -> None:
        self.calls.append(("delete_retired_pods", namespace, names, owner_uid))

    def __getattr__(self, name: str):  # any other call: recorded, and refused
        async def call(*args, **kwargs):
            self.calls.append((name, *args))
            raise AssertionError(f"unexpected API call {name}")
        return call


class Shell:
    """The handlers with kopf's two indexes as plain mappings, fed event by event as kopf would."""

    def __init__(self, api: Api) -> None:
        self.runtime = Runtime(kube=api)  # type: ignore[arg-type]
        self.memo = kopf.Memo(runtime=self.runtime)
        self.workloads: dict[str, list[WorkloadView]] = {}
        self.pods: dict[tuple[str, str], list] = {}

    async def index(self, body: dict) -> None:
        self.workloads[UID] = [(await workloads_by_uid(body=kopf.Body(body), uid=UID, memo=self.memo))[UID]]

    async def workload_event(self, body: dict) -> None:
        await self.index(body)
        await on_workload_event(type="MODIFIED", body=kopf.Body(body), uid=UID, memo=self.memo,
                                workloads_by_uid=self.workloads, pods_by_workload=self.pods)

    async def pod_event(self, body: dict) -> None:
        for key, summary in (await pods_by_workload(body=kopf.Body(body), namespace="ml") or {}).items():
            self.pods[key] = [summary]
        await on_pod_event(type="MODIFIED", body=kopf.Body(body), uid=body["metadata"]["uid"],
                           name=body["metadata"]["name"], namespace="ml", memo=self.memo,
                           workloads_by_uid=self.workloads, pods_by_workload=self.pods)


async def test_a_finished_workloads_write_is_forgotten_once_indexed_and_nothing_older_is_reconciled():
    api = Api()
    shell = Shell(api)
    await shell.index(workload("collecting", "4"))  # the index lags: the reconcile that decided from this went on
    shell.runtime.written[UID] = WorkloadView.from_body(workload("completed", "5"))  # our write of `completed`
    await shell.pod_event(POD)  # the index still says collecting: decided from our newer write, the pod retired
    retired = [("retire_pod", "ml", pod_name("train", 1), "uid-pod")]
    assert api.calls == retired
    await shell.workload_event(workload("completed", "5"))  # the echo of our write
    assert UID not in shell.runtime.written
    held = shell.workloads[UID][0]
    assert held.status.state is State.COMPLETED and held.status.history == [] and held.resource_version == "5"
    await shell.pod_event(POD)  # retired, not yet gone from the watch: nothing to do
    await shell.workload_event(workload("completed", "6"))  # someone else's edit (a label): nothing either
    assert api.calls == retired
    assert shell.runtime.written == {}


async def test_a_workload_still_running_keeps_its_write_after_the_echo():
    shell = Shell(Api())
    shell.runtime.written[UID] = WorkloadView.from_body(workload("running", "3"))
    await shell.workload_event(workload("running", "3"))
    assert shell.runtime.written[UID].resource_version == "3"
    assert shell.workloads[UID][0] is shell.runtime.written[UID]  # one parse, one object


async def test_a_ttl_and_the_release_work_from_the_reduced_view():
    deleted = workload("completed", "7", spec={"ttlSecondsAfterFinished": 0}, deleting=True)
    released = workload("completed", "8", spec={"ttlSecondsAfterFinished": 0}, deleting=True, finalizers=())
    api = Api({"delete_workload": deleted, "remove_finalizer": released})
    shell = Shell(api)
    await shell.pod_event(POD)
    await shell.workload_event(workload("completed", "6", spec={"ttlSecondsAfterFinished": 0}))  # e.g. at start-up
    assert shell.workloads[UID][0].status.history == []  # reduced
    assert api.calls == [
        ("delete_workload", "ml", "train", UID),
        ("delete_pod", "ml", pod_name("train", 1), "uid-pod", False),
        ("remove_finalizer", "ml", "train", UID, (FINALIZER,)),
    ]
    assert shell.runtime.written[UID].resource_version == "8"


WORKLOADS, PODS = types.SimpleNamespace(group=GROUP, plural=PLURAL), types.SimpleNamespace(group="", plural="pods")


@pytest.mark.parametrize(("written", "event", "left_out"), [
    (("running", "5"), ("MODIFIED", "5"), True),      # the echo of our last write
    (("running", "5"), ("MODIFIED", "3"), True),      # of an earlier one: the answer to the last had it already
    (("running", "5"), ("MODIFIED", "6"), False),     # newer: someone else's change (a cancel, a deletion)
    (("running", "5"), ("DELETED", "5"), False),      # gone: the shell forgets it
    (("running", "5"), ("ADDED", "5"), False),
    (("running", "5"), (None, "5"), False),           # listed at start-up
    (("completed", "5"), ("MODIFIED", "5"), False),   # a finished state's echo: indexed, reduced; `written` lets go
    (("completed", "5"), ("MODIFIED", "4"), True),    # an earlier write's (collecting, say): the finished one had it
    (("running", "x5"), ("MODIFIED", "x5"), False),   # resourceVersions that are not etcd's: no order to trust
    (None, ("MODIFIED", "5"), False),                 # nothing written by this process
])
def test_an_event_no_newer_than_our_own_write_is_left_out_of_kopfs_stream(written, event, left_out):
    runtime = Runtime(kube=Api())  # type: ignore[arg-type]
    if written is not None:
        runtime.written[UID] = WorkloadView.from_body(workload(*written))
    kind, version = event
    assert runtime.known_already(WORKLOADS, {"type": kind, "object": workload("running", version)}) is left_out
    assert runtime.known_already(PODS, {"type": kind, "object": {**POD, "metadata": {
        **POD["metadata"], "uid": UID, "resourceVersion": version}}}) is False  # only Workloads


def test_a_queued_workload_under_admission_limits_sees_every_event():
    runtime = Runtime(kube=Api(), policy=Policy(max_active=1))  # type: ignore[arg-type]
    runtime.written[UID] = WorkloadView.from_body(workload("queued", "5"))
    assert runtime.known_already(WORKLOADS, {"type": "MODIFIED", "object": workload("queued", "5")}) is False
    runtime.written[UID] = WorkloadView.from_body(workload("running", "6"))
    assert runtime.known_already(WORKLOADS, {"type": "MODIFIED", "object": workload("queued", "5")}) is True


def listed(body: dict, kind: str | None = None) -> dict:
    return {"type": kind, "object": body}


@pytest.mark.parametrize(("body", "held_here"), [
    (workload("completed", "5"), True),                                   # finished, no TTL: waits on nothing
    (workload("failed", "5", spec={"replicas": 3}), True),
    (workload("completed", "5", spec={"ttlSecondsAfterFinished": 60}), False),  # its TTL needs a timer
    (workload("completed", "5", deleting=True), False),                   # its release is kopf's (and the shell's)
    (workload("running", "5"), False),
    ({**workload("completed", "5"), "status": "completed"}, False),       # unreadable: no view to hold
    ({"kind": "Status", "status": "Failure"}, False),                     # a watch's ERROR object
])
def test_a_listed_finished_workload_that_waits_on_nothing_is_held_outside_kopf(body, held_here):
    runtime = Runtime(kube=Api())  # type: ignore[arg-type]
    assert runtime.leaves_out(WORKLOADS, listed(body)) is held_here
    assert (UID in runtime.settled) is held_here
    if held_here:
        assert runtime.settled[UID].status.history == []  # reduced, as the index would hold it
        assert [v.uid for v in runtime.views()] == [UID]
    assert runtime.leaves_out(PODS, listed({**POD, "metadata": {**POD["metadata"], "uid": UID}})) is False


@pytest.mark.parametrize("first", [
    workload("completed", "5", spec={"ttlSecondsAfterFinished": 86400}),  # listed with a TTL, say
    workload("running", "5"),                                             # or still running
    workload("completed", "5", deleting=True),
])
@pytest.mark.parametrize("kind", [None, "ADDED", "MODIFIED"])
def test_a_workload_kopf_was_given_stays_kopfs_whatever_comes(first, kind):
    """Even before kopf has indexed it (at start-up no handler has run yet, so the shell has no index to ask): a
    later event held here would leave kopf's index with the older one (a TTL still set, say, and a timer on it)."""
    runtime = Runtime(kube=Api())  # type: ignore[arg-type]
    assert runtime.leaves_out(WORKLOADS, listed(first)) is False
    assert runtime.leaves_out(WORKLOADS, listed(workload("completed", "6"), kind)) is False
    assert runtime.settled == {}
    # Until it is gone: a Workload of the same uid seen after its DELETED event is a new one for kopf.
    assert runtime.leaves_out(WORKLOADS, listed(workload("completed", "7"), "DELETED")) is False
    assert runtime.leaves_out(WORKLOADS, listed(workload("completed", "8"))) is True


@pytest.mark.parametrize(("kind", "body"), [
    ("MODIFIED", workload("completed", "6", deleting=True)),  # deleted: kopf's from now on
    ("MODIFIED", workload("completed", "6", spec={"ttlSecondsAfterFinished": 0})),  # a TTL set: it needs a timer
    ("DELETED", workload("completed", "6")),                  # gone (its finalizer taken off by hand)
])
def test_a_settled_workloads_change_that_matters_goes_to_kopf(kind, body):
    runtime = Runtime(kube=Api())  # type: ignore[arg-type]
    assert runtime.leaves_out(WORKLOADS, listed(workload("completed", "5"))) is True
    assert runtime.leaves_out(WORKLOADS, listed(workload("completed", "6", spec={"cancel": True}), "MODIFIED")) is True
    assert runtime.settled[UID].resource_version == "6"  # an edit that changes nothing for it: still held here
    assert runtime.leaves_out(WORKLOADS, listed(body, kind)) is False
    assert runtime.settled == {}


async def test_a_settled_workloads_pod_still_brings_it_back():
    """Its finished pod, not retired (the operator stopped between the write of `completed` and the retirement),
    is retired when its event comes, from the view held outside kopf."""
    api = Api()
    shell = Shell(api)
    assert shell.runtime.leaves_out(WORKLOADS, listed(workload("completed", "5"))) is True
    await shell.pod_event(POD)
    assert api.calls == [("retire_pod", "ml", pod_name("train", 1), "uid-pod")]  # and nothing written
    # Still held here, not kopf's, for an edit that changes nothing for it (a label).
    assert shell.runtime.leaves_out(WORKLOADS, listed(workload("completed", "6"), "MODIFIED")) is True
    assert shell.runtime.settled[UID].resource_version == "6"


def pod_event(kind: str | None, version: str, uid: str = "uid-pod") -> dict:
    return {"type": kind, "object": {**POD, "metadata": {**POD["metadata"], "uid": uid, "resourceVersion": version}}}


@pytest.mark.parametrize(("first", "left_out"), [
    (("ADDED", "7"), True),       # the echo of the operator's creation: created_pods holds the pod already
    (("ADDED", "8"), False),      # changed since (bound to a node, say): kopf sees it
    (("MODIFIED", "8"), False),   # the ADDED event came before the creation's answer was noted
    (("DELETED", "8"), False),    # deleted at once (no node): kopf and the shell see it gone
    ((None, "7"), False),         # listed again, after the watch expired
])
def test_the_echo_of_a_pods_creation_is_left_out_and_its_next_event_is_not(first, left_out):
    runtime = Runtime(kube=Api())  # type: ignore[arg-type]
    runtime.created_versions["uid-pod"] = "7"
    assert runtime.leaves_out(PODS, pod_event(*first)) is left_out
    assert runtime.created_versions == {}  # the first event of the pod ends the wait for the echo, whatever it is
    assert runtime.leaves_out(PODS, pod_event("ADDED", "7")) is False  # so the same event again goes to kopf
    assert runtime.leaves_out(PODS, pod_event("ADDED", "7", uid="uid-other")) is False  # not a pod it created


async def test_a_pod_whose_creation_echo_was_left_out_is_still_the_workloads_own():
    """Between its creation and its next event, kopf's index has not seen the pod: the shell's note of it stands
    for it (own_pods), and the next event, which kopf sees, hands it over to the index."""

    class Creating(Api):
        async def create_pod(self, manifest: dict, owner_uid: str) -> dict:
            self.calls.append(("create_pod", manifest["metadata"]["name"]))
            uid = "uid-pod" if owner_uid == UID else f"uid-pod-of-{owner_uid}"
            return {**manifest, "metadata": {**manifest["metadata"], "uid": uid, "resourceVersion": "7"},
                    "status": {"phase": "Pending"}}

    shell = Shell(Creating())
    view = WorkloadView.from_body(workload("preparing", "5"))
    other = dataclasses.replace(view, name="other", uid="uid-other")
    await create_pods(view, [CreatePod(attempt=1)], shell.runtime)
    await create_pods(other, [CreatePod(attempt=1)], shell.runtime)
    created = pod_event("ADDED", "7")
    assert shell.runtime.leaves_out(PODS, created) is True
    assert [p.name for p in own_pods(view, shell.runtime, shell.pods)] == [pod_name("train", 1)]
    assert [p.name for p in own_pods(other, shell.runtime, shell.pods)] == [pod_name("other", 1)]
    assert list(shell.runtime.created_versions) == ["uid-pod-of-uid-other"]  # its pod's echo still awaited
    shell.runtime.forget("uid-other")  # its DELETED event: nothing of it is kept
    assert own_pods(other, shell.runtime, shell.pods) == [] and list(shell.runtime.created_pods) == [UID]
    assert shell.runtime.created_versions == {}
    await shell.pod_event({**POD, "metadata": {**POD["metadata"], "resourceVersion": "8"}})  # its next event: kopf's
    assert shell.runtime.created_pods == {}
    assert [(p.name, p.phase) for p in own_pods(view, shell.runtime, shell.pods)] == [(pod_name("train", 1), "Succeeded")]


async def test_a_created_pods_note_goes_with_its_first_event_whatever_its_owner_references_say():
    """Orphaned (its Workload deleted with --cascade=orphan) before any event of it reached kopf: its event still
    ends the note, or the Workload's cancel would wait for a pod that is gone."""
    shell = Shell(Api())
    view = WorkloadView.from_body(workload("preparing", "5"))
    note = dataclasses.replace(summarize_pod(POD), phase="Pending")
    shell.runtime.created_pods[UID] = {("ml", note.name): note}
    shell.runtime.created_for["ml", note.name] = UID
    shell.runtime.created_versions["uid-pod"] = "7"
    orphaned = {**POD, "metadata": {key: value for key, value in POD["metadata"].items() if key != "ownerReferences"}}
    await shell.pod_event(orphaned)
    assert shell.runtime.created_pods == {} and shell.runtime.created_for == {}
    assert shell.runtime.created_versions == {}  # even where kopf's stream did not ask (kopf_transform not applied)
    assert own_pods(view, shell.runtime, shell.pods) == []


def test_a_created_pods_note_never_stands_beside_the_pod_it_notes():
    """Noted after the index had it (its gang's other creations were slow): the index's pod stands, alone, and
    once the operator retires it, the note does not bring it back as Pending."""
    runtime = Runtime(kube=Api())  # type: ignore[arg-type]
    view = WorkloadView.from_body(workload("completed", "5"))
    watched = summarize_pod(POD)
    note = dataclasses.replace(watched, phase="Pending")
    runtime.created_pods[UID] = {("ml", note.name): note}
    index = {("ml", UID): [watched]}
    assert own_pods(view, runtime, index) == [watched]
    runtime.retired_pods.add(watched.uid)
    assert own_pods(view, runtime, index) == []
