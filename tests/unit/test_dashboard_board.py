"""The dashboard's board: what the pages are sent, from the watches' events (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from workload_operator import GROUP, VERSION
from workload_operator.dashboard.board import EVENTS_KEPT, Board, row_of, state_map, timeline
from workload_operator.lifecycle.states import TRANSITIONS
from workload_operator.manifests import ATTEMPT_LABEL, INDEX_LABEL, WORKLOAD_UID_LABEL


def workload(name: str, state: Any = None, *, uid: str | None = None, namespace: str = "ml", priority: int = 0,
             created: str = "2026-12-06T10:00:00Z", **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}", "creationTimestamp": created,
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"image": "python:3.12", "priority": priority, "template": {"spec": {"containers": []}}},
    }
    if state is not None or status:
        body["status"] = {"state": state, **status}
    return body


def entry(source: str | None, target: str, at: str, reason: str = "R") -> dict[str, Any]:
    return {"from": source, "to": target, "at": at, "reason": reason}


def pod(name: str, owner: str, *, attempt: int = 1, rank: int = 0, phase: str = "Running", namespace: str = "ml",
        uid: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid or f"pod-{name}",
                         "labels": {WORKLOAD_UID_LABEL: owner, ATTEMPT_LABEL: str(attempt), INDEX_LABEL: str(rank)}},
            "spec": {"nodeName": "node-1"},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]}}


def event(uid: str, owner: str, last: str, *, reason: str = "Started", namespace: str = "ml",
          api_version: str = f"{GROUP}/{VERSION}") -> dict[str, Any]:
    return {"metadata": {"uid": uid, "namespace": namespace}, "type": "Normal", "reason": reason, "message": "m",
            "count": 1, "lastTimestamp": last,
            "involvedObject": {"kind": "Workload", "apiVersion": api_version, "uid": owner, "name": "x"}}


def test_the_map_is_the_lifecycle_map():
    drawn = state_map()
    assert {state: tuple(targets) for state, targets in drawn["transitions"].items()} == {
        str(state): tuple(str(t) for t in targets) for state, targets in TRANSITIONS.items()}
    assert drawn["initial"] == "queued" and set(drawn["terminal"]) == {"completed", "failed", "cancelled"}


@pytest.mark.parametrize("status, shown", [
    ({"state": "running", "podsReady": "3/4", "attempts": 2, "reason": "Started"},
     {"state": "running", "ready": "3/4", "attempts": 2, "reason": "Started"}),
    ({"state": "dreaming"}, {"state": "dreaming", "attempts": 0}),          # an unknown state written by hand
    ({"state": 7, "attempts": "three"}, {"state": "7", "attempts": 0}),     # not even the right types
    ({}, {"state": None, "ready": None}),
])
def test_a_row_shows_what_is_stored_whatever_its_shape(status, shown):
    body = workload("w")
    body["status"] = status
    row = row_of(body)
    assert {key: row[key] for key in shown} == shown
    assert row["name"] == "w" and row["type"] == "batch"


def test_a_row_of_a_status_that_is_not_an_object_is_a_row_with_no_state():
    body = workload("w")
    body["status"] = "broken"
    assert row_of(body)["state"] is None


def test_the_board_keeps_neither_managed_fields_nor_the_pod_template():
    board = Board()
    board.workload("ADDED", workload("w", "queued"))
    kept = board.workloads["uid-w"].body
    assert "managedFields" not in kept["metadata"] and "template" not in kept["spec"]


def test_a_timeline_shows_each_attempt_and_the_re_queue_between_them():
    history = [entry(None, "queued", "2026-12-06T10:00:00Z"), entry("queued", "preparing", "2026-12-06T10:00:01Z"),
               entry("preparing", "running", "2026-12-06T10:00:05Z"),
               entry("running", "orphaned", "2026-12-06T10:01:00Z", "PodLost"),
               entry("orphaned", "queued", "2026-12-06T10:01:00Z", "Requeued"),
               entry("queued", "preparing", "2026-12-06T10:01:10Z"),
               entry("preparing", "running", "2026-12-06T10:01:15Z")]
    bands = timeline(history, attempts=2)
    assert [(band["state"], band["attempt"]) for band in bands] == [
        ("queued", 1), ("preparing", 1), ("running", 1), ("orphaned", 1), ("queued", 1), ("preparing", 2),
        ("running", 2)]
    assert bands[2] == {"state": "running", "start": "2026-12-06T10:00:05Z", "end": "2026-12-06T10:01:00Z",
                        "reason": "R", "attempt": 1}
    assert bands[-1]["end"] is None  # still running


def test_a_timeline_ends_a_terminal_state_where_it_starts():
    bands = timeline([entry(None, "queued", "2026-12-06T10:00:00Z"),
                      entry("queued", "cancelled", "2026-12-06T10:00:09Z")], attempts=0)
    assert bands[-1]["start"] == bands[-1]["end"] == "2026-12-06T10:00:09Z"
    assert [band["attempt"] for band in bands] == [1, 1]


def test_a_timeline_of_a_truncated_history_counts_attempts_back_from_the_last():
    # The oldest entries are dropped past 50: the first kept ones belong to attempt 9 of 10.
    history = [entry("preparing", "running", "2026-12-06T10:00:00Z"),
               entry("running", "orphaned", "2026-12-06T10:00:01Z"), entry("orphaned", "queued", "2026-12-06T10:00:02Z"),
               entry("queued", "preparing", "2026-12-06T10:00:03Z")]
    assert [band["attempt"] for band in timeline(history, attempts=10)] == [9, 9, 9, 10]


def test_a_timeline_survives_entries_written_by_hand():
    bands = timeline([entry(None, "queued", "x"), "not an entry", {"to": 3}], attempts=1)
    assert [band["state"] for band in bands] == ["queued", "3"]


def test_queue_positions_follow_the_operators_order_and_moves_are_reported():
    board = Board()
    board.workload("ADDED", workload("old", "queued", created="2026-12-06T09:00:00Z"))
    board.workload("ADDED", workload("new", "queued", created="2026-12-06T11:00:00Z"))
    board.workload("ADDED", workload("running", "running"))
    board.take_changes()
    assert {row["name"]: row["queuePosition"] for row in board.rows()} == {"old": 1, "new": 2, "running": None}

    board.workload("ADDED", workload("urgent", "queued", priority=10))
    changed, removed, _ = board.take_changes()
    # The newcomer goes first, and the two it passed are sent again with their new places.
    assert {row["name"]: row["queuePosition"] for row in changed} == {"urgent": 1, "old": 2, "new": 3}
    assert removed == []

    board.workload("MODIFIED", workload("urgent", "preparing", priority=10))
    changed, _, _ = board.take_changes()
    assert {row["name"]: row["queuePosition"] for row in changed} == {"urgent": None, "old": 1, "new": 2}


def test_a_queued_workload_being_deleted_takes_no_place():
    board = Board()
    going = workload("going", "queued", created="2026-12-06T09:00:00Z")
    going["metadata"]["deletionTimestamp"] = "2026-12-06T12:00:00Z"
    board.workload("ADDED", going)
    board.workload("ADDED", workload("staying", "queued"))
    assert {row["name"]: row["queuePosition"] for row in board.rows()} == {"going": None, "staying": 1}


def test_a_relist_forgets_what_it_no_longer_lists_in_its_own_namespace_only():
    board = Board()
    board.workloads_listed([workload("a", "queued"), workload("b", "queued"),
                            workload("c", "queued", namespace="other")])
    board.take_changes()
    board.workloads_listed([workload("a", "running")], namespace="ml")
    changed, removed, _ = board.take_changes()
    assert removed == ["uid-b"] and "c" in [row["name"] for row in board.rows()]
    assert [row["name"] for row in changed if row["state"] == "running"] == ["a"]


def test_a_deleted_workload_is_removed_with_its_pods_and_events():
    board = Board()
    board.workload("ADDED", workload("w", "running"))
    board.pod("ADDED", pod("w-1", "uid-w"))
    board.event("ADDED", event("e1", "uid-w", "2026-12-06T10:00:00Z"))
    board.take_changes()
    board.workload("DELETED", workload("w", "running"))
    changed, removed, touched = board.take_changes()
    assert removed == ["uid-w"] and changed == [] and "uid-w" in touched
    assert board.page("ml", "w") == {"found": False} and "uid-w" not in board.pods and "uid-w" not in board.events


def test_a_page_shows_the_gang_newest_attempt_first_by_rank_and_the_events_in_order():
    board = Board()
    board.workload("ADDED", workload("w", "running", attempts=2, transitions=60, history=[
        entry("queued", "preparing", "2026-12-06T10:00:00Z"), entry("preparing", "running", "2026-12-06T10:00:05Z")],
        run={"pod": "w-2-0", "result": {"loss": 0.1}}))
    for rank in (1, 0):
        board.pod("ADDED", pod(f"w-2-{rank}", "uid-w", attempt=2, rank=rank))
    board.pod("ADDED", pod("w-1-0", "uid-w", attempt=1, phase="Failed"))
    board.pod("ADDED", {"metadata": {"name": "stranger", "uid": "s", "labels": {}}})   # not a Workload's: ignored
    board.event("ADDED", event("e2", "uid-w", "2026-12-06T10:00:05Z", reason="Started"))
    board.event("ADDED", event("e1", "uid-w", "2026-12-06T10:00:00Z", reason="PodsCreated"))
    board.event("ADDED", event("k", "uid-w", "2026-12-06T10:00:00Z", api_version="kueue.x-k8s.io/v1beta1"))
    page = board.page("ml", "w")
    assert [p["name"] for p in page["pods"]] == ["w-2-0", "w-2-1", "w-1-0"]
    assert page["pods"][0] == {"name": "w-2-0", "namespace": "ml", "rank": 0, "attempt": 2, "phase": "Running",
                               "ready": True, "node": "node-1", "deleting": False, "reason": None}
    assert [e["reason"] for e in page["events"]] == ["PodsCreated", "Started"]  # Kueue's Workload's Event is not ours
    assert page["workload"]["droppedTransitions"] == 58
    assert page["workload"]["result"] == {"loss": 0.1} and "result" not in page["workload"]["run"]
    assert [band["attempt"] for band in page["timeline"]] == [2, 2]


def test_only_the_newest_events_are_kept():
    board = Board()
    for n in range(EVENTS_KEPT + 5):
        board.event("ADDED", event(f"e{n}", "uid-w", f"2026-12-06T10:{n:02d}:00Z"))
    kept = board.events["uid-w"]
    assert len(kept) == EVENTS_KEPT and min(e["last"] for e in kept.values()) == "2026-12-06T10:05:00Z"


def test_a_relist_of_pods_drops_those_gone_meanwhile():
    board = Board()
    board.pods_listed([pod("a", "uid-w"), pod("b", "uid-w"), pod("c", "uid-v", namespace="other")])
    board.pods_listed([pod("a", "uid-w")], namespace="ml")
    assert set(board.pods["uid-w"]) == {"pod-a"} and set(board.pods["uid-v"]) == {"pod-c"}
