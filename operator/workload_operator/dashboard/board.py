"""What the dashboard shows, kept from the watches' events (pure: no I/O, no clock).

The board holds one small row per Workload (what the list shows), the Workload's own status for its page, a
summary of each of its pods and its newest Events. ``take_changes`` hands the server what moved since it last
asked, queue positions included, so that the pages are sent only differences.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from workload_operator import GROUP
from workload_operator.lifecycle.decide import WorkloadView
from workload_operator.lifecycle.queue import admitted_by_kueue, queue_order
from workload_operator.lifecycle.states import INITIAL, TERMINAL, TRANSITIONS, State
from workload_operator.manifests import ATTEMPT_LABEL, INDEX_LABEL, WORKLOAD_UID_LABEL

EVENTS_KEPT = 30  # the newest Events of each Workload (kubectl describe shows them all; a page needs the latest)


def state_map() -> dict[str, Any]:
    """The transition map, as the pages draw it."""
    return {"states": [str(state) for state in State], "initial": str(INITIAL),
            "terminal": [str(state) for state in State if state in TERMINAL],
            "transitions": {str(source): [str(target) for target in targets] for source, targets in TRANSITIONS.items()}}


def _text(value: Any) -> str | None:
    """A field a person may have written by hand: shown as text, whatever its type."""
    return None if value is None else value if isinstance(value, str) else str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def row_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the list, from a Workload as stored (any shape: the status may have been written by hand)."""
    meta, spec, status = _mapping(body.get("metadata")), _mapping(body.get("spec")), _mapping(body.get("status"))
    return {
        "uid": meta.get("uid", ""), "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
        "type": _text(spec.get("type")) or "batch", "state": _text(status.get("state")),
        "reason": _text(status.get("reason")), "message": _text(status.get("message")),
        "ready": _text(status.get("podsReady")), "attempts": _int(status.get("attempts")),
        "transitions": _int(status.get("transitions")), "created": meta.get("creationTimestamp"),
        "deleting": bool(meta.get("deletionTimestamp")), "queuePosition": None,
    }


def timeline(history: Iterable[Mapping[str, Any]], attempts: int) -> list[dict[str, Any]]:
    """The history as bands, oldest first: each state from its entry until the next (``end`` None: still in it;
    a terminal state's band ends where it starts), with the attempt it belongs to. Attempts are counted back from
    ``attempts`` (the history may have lost its oldest entries): each entry into ``preparing`` starts one."""
    entries = [entry for entry in history if isinstance(entry, Mapping)]
    attempt, numbers = max(attempts, 1), []
    for entry in reversed(entries):
        numbers.append(max(attempt, 1))
        if entry.get("to") == State.PREPARING:
            attempt -= 1
    numbers.reverse()
    bands = []
    for index, (entry, number) in enumerate(zip(entries, numbers)):
        state = _text(entry.get("to"))
        following = entries[index + 1] if index + 1 < len(entries) else None
        end = following.get("at") if following is not None else entry.get("at") if state in TERMINAL else None
        bands.append({"state": state, "start": entry.get("at"), "end": end, "reason": _text(entry.get("reason")),
                      "attempt": number})
    return bands


def pod_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a Workload's page shows of one of its pods."""
    meta, spec, status = _mapping(body.get("metadata")), _mapping(body.get("spec")), _mapping(body.get("status"))
    labels = _mapping(meta.get("labels"))
    ready = next((c.get("status") == "True" for c in status.get("conditions") or [] if c.get("type") == "Ready"), False)
    waiting = next((_mapping(_mapping(s.get("state")).get("waiting")).get("reason")
                    for s in status.get("containerStatuses") or [] if _mapping(s.get("state")).get("waiting")), None)
    unscheduled = next((c.get("reason") for c in status.get("conditions") or []
                        if c.get("type") == "PodScheduled" and c.get("status") == "False"), None)

    def number(label: str) -> int | None:
        value = labels.get(label)
        return int(value) if isinstance(value, str) and value.isdigit() else None

    return {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""), "rank": number(INDEX_LABEL), "attempt": number(ATTEMPT_LABEL),
            "phase": status.get("phase") or "Pending", "ready": ready, "node": spec.get("nodeName"),
            "deleting": bool(meta.get("deletionTimestamp")), "reason": status.get("reason") or waiting or unscheduled}


def event_of(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"namespace": _mapping(body.get("metadata")).get("namespace", ""), "type": body.get("type") or "Normal", "reason": body.get("reason") or "", "message": body.get("message") or "",
            "count": body.get("count") or 1,
            "last": body.get("lastTimestamp") or body.get("eventTime") or (body.get("metadata") or {}).get("creationTimestamp")}


def _is_workload_event(body: Mapping[str, Any]) -> bool:
    involved = _mapping(body.get("involvedObject"))
    return involved.get("kind") == "Workload" and str(involved.get("apiVersion", "")).split("/")[0] == GROUP


def _drop_listed(kept: dict[str, dict[str, dict[str, Any]]], namespace: str | None, touched: set[str]) -> None:
    """Before a relist: forget what was kept of the listed namespace (or of all), by Workload."""
    for owner, summaries in kept.items():
        for uid in [uid for uid, summary in summaries.items() if namespace in (None, summary["namespace"])]:
            del summaries[uid]
            touched.add(owner)


@dataclasses.dataclass
class _Workload:
    body: dict[str, Any]     # as stored, less what no page shows (managed fields, the pod template)
    row: dict[str, Any]
    order: tuple[Any, ...] | None   # while it waits in the queue: its key in the operator's own order


class Board:
    """Every Workload the watches have shown, their pods and Events, and what changed since ``take_changes``."""

    def __init__(self) -> None:
        self.workloads: dict[str, _Workload] = {}                   # by uid
        self.by_name: dict[tuple[str, str], str] = {}               # (namespace, name) -> uid
        self.pods: dict[str, dict[str, dict[str, Any]]] = {}        # workload uid -> pod uid -> summary
        self.events: dict[str, dict[str, dict[str, Any]]] = {}      # workload uid -> event uid -> summary
        self._changed: set[str] = set()     # uids whose row changed
        self._removed: set[str] = set()
        self._touched: set[str] = set()     # uids whose page changed (the Workload, a pod, an Event)
        self._positions: dict[str, int] = {}

    # --- from the watches --------------------------------------------------------------------

    def workload(self, kind: str, body: Mapping[str, Any]) -> None:
        uid = _mapping(body.get("metadata")).get("uid", "")
        if kind == "DELETED":
            self._forget(uid)
            return
        kept = {**body, "metadata": {k: v for k, v in _mapping(body.get("metadata")).items() if k != "managedFields"},
                "spec": {k: v for k, v in _mapping(body.get("spec")).items() if k != "template"}}
        row, view = row_of(kept), WorkloadView.from_body(kept)
        waiting = view.status.state is State.QUEUED and not view.cancel_requested and not admitted_by_kueue(view)
        self.workloads[uid] = _Workload(kept, row, queue_order(view) if waiting else None)
        self.by_name[(row["namespace"], row["name"])] = uid
        self._changed.add(uid)
        self._removed.discard(uid)
        self._touched.add(uid)

    def workloads_listed(self, bodies: Iterable[Mapping[str, Any]], namespace: str | None = None) -> None:
        """A (re)list: what it lacks was deleted meanwhile (in ``namespace``, or anywhere when None)."""
        seen = set()
        for body in bodies:
            self.workload("ADDED", body)
            seen.add(_mapping(body.get("metadata")).get("uid", ""))
        for uid, known in list(self.workloads.items()):
            if uid not in seen and namespace in (None, known.row["namespace"]):
                self._forget(uid)

    def pod(self, kind: str, body: Mapping[str, Any]) -> None:
        meta = _mapping(body.get("metadata"))
        owner = _mapping(meta.get("labels")).get(WORKLOAD_UID_LABEL)
        if not owner:
            return
        pods = self.pods.setdefault(owner, {})
        if kind == "DELETED":
            pods.pop(meta.get("uid", ""), None)
        else:
            pods[meta.get("uid", "")] = pod_of(body)
        self._touched.add(owner)

    def pods_listed(self, bodies: Iterable[Mapping[str, Any]], namespace: str | None = None) -> None:
        """A (re)list of pods: the ones it lacks (in ``namespace``, or anywhere when None) are gone."""
        _drop_listed(self.pods, namespace, self._touched)
        for body in bodies:
            self.pod("ADDED", body)

    def event(self, kind: str, body: Mapping[str, Any]) -> None:
        if not _is_workload_event(body):
            return
        owner = _mapping(body.get("involvedObject")).get("uid", "")
        events = self.events.setdefault(owner, {})
        uid = _mapping(body.get("metadata")).get("uid", "")
        if kind == "DELETED":
            events.pop(uid, None)
        else:
            events[uid] = event_of(body)
            if len(events) > EVENTS_KEPT:
                oldest = min(events, key=lambda key: str(events[key]["last"] or ""))
                del events[oldest]
        self._touched.add(owner)

    def events_listed(self, bodies: Iterable[Mapping[str, Any]], namespace: str | None = None) -> None:
        _drop_listed(self.events, namespace, self._touched)
        for body in bodies:
            self.event("ADDED", body)

    def _forget(self, uid: str) -> None:
        known = self.workloads.pop(uid, None)
        if known is not None:
            key = (known.row["namespace"], known.row["name"])
            if self.by_name.get(key) == uid:
                del self.by_name[key]
            self._removed.add(uid)
            self._changed.discard(uid)
        self.pods.pop(uid, None)  # a pod or Event may still come after its Workload went: dropped with the next one
        self.events.pop(uid, None)
        self._touched.add(uid)

    # --- for the pages -----------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        self._place_queue()
        return [known.row for known in self.workloads.values()]

    def take_changes(self) -> tuple[list[dict[str, Any]], list[str], set[str]]:
        """The rows that changed (queue positions included), the uids removed, and the uids whose page changed,
        since the last call."""
        moved = self._place_queue()
        changed = [self.workloads[uid].row for uid in self._changed | moved if uid in self.workloads]
        removed, touched = sorted(self._removed), self._touched
        self._changed, self._removed, self._touched = set(), set(), set()
        return changed, removed, touched

    def _place_queue(self) -> set[str]:
        """Number the queued Workloads in the operator's order of admission (Kueue's are its own); the uids whose
        number moved."""
        queued = sorted((uid for uid, known in self.workloads.items() if known.order is not None),
                        key=lambda uid: self.workloads[uid].order)
        positions = {uid: place for place, uid in enumerate(queued, start=1)}
        moved = {uid for uid in positions.keys() | self._positions.keys()
                 if positions.get(uid) != self._positions.get(uid) and uid in self.workloads}
        for uid in moved:
            self.workloads[uid].row["queuePosition"] = positions.get(uid)
        self._positions = positions
        return moved

    def page(self, namespace: str, name: str) -> dict[str, Any]:
        """Everything the Workload's own page shows; ``found`` False when there is no such Workload."""
        uid = self.by_name.get((namespace, name))
        if uid is None:
            return {"found": False}
        known = self.workloads[uid]
        spec, status = _mapping(known.body.get("spec")), _mapping(known.body.get("status"))
        history = [entry for entry in status.get("history") or [] if isinstance(entry, Mapping)]
        run = _mapping(status.get("run"))
        workload = {
            **known.row,
            "spec": {"replicas": _int(spec.get("replicas")) or 1, "image": _text(spec.get("image")),
                     "priority": _int(spec.get("priority"))},
            "conditions": [c for c in status.get("conditions") or [] if isinstance(c, Mapping)],
            "history": history,
            "droppedTransitions": max(_int(status.get("transitions")) - len(history), 0),
            "run": {key: value for key, value in run.items() if key != "result"} or None,
            "result": run.get("result"), "endpoint": _text(status.get("endpoint")),
            "completionTime": status.get("completionTime"),
        }
        pods = sorted(self.pods.get(uid, {}).values(),
                      key=lambda pod: (-(pod["attempt"] or 0), pod["rank"] or 0, pod["name"]))
        events = sorted(self.events.get(uid, {}).values(), key=lambda event: str(event["last"] or ""))
        return {"found": True, "workload": workload, "timeline": timeline(history, known.row["attempts"]),
                "pods": pods, "events": events}
