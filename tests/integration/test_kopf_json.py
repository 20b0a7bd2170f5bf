"""kopf's JSON, as the operator runs it (kopf_json.py, applied when the handlers are loaded): the listings, watch
events and answers kopf reads are parsed by orjson, into the objects the standard library would give."""

from __future__ import annotations

import json
import types
from typing import Any

import orjson
import pytest
from kopf._cogs.clients import api

import workload_operator.handlers  # noqa: F401  (loading the handlers applies the change)
from tests.harness import Cluster
from workload_operator import kopf_json

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture()
def parsed(monkeypatch) -> list[Any]:
    """What kopf parsed with orjson, from here until the test ends (the operator starts after this fixture)."""
    seen: list[Any] = []

    def loads(text: str | bytes) -> Any:
        seen.append(value := orjson.loads(text))
        return value

    monkeypatch.setattr(kopf_json.JSON, "loads", loads)
    return seen


@pytest.fixture()
def operator(parsed, operator):  # noqa: F811  (the shared fixture, started after the spy)
    return operator


async def test_kopf_parses_the_listings_and_watch_events_with_orjson(cluster: Cluster, parsed):
    await cluster.create_workload("parsed")
    await cluster.wait_state("parsed", "preparing")
    listings = {value["kind"] for value in parsed if str(value.get("kind", "")).endswith("List")}
    assert {"WorkloadList", "PodList"} <= listings  # kopf's listings at start-up: api.get's answers
    events = {(value["type"], value["object"]["kind"]) for value in parsed
              if value.get("type") and value["object"]["metadata"].get("name", "").startswith("parsed")}
    assert {("ADDED", "Pod"), ("MODIFIED", "Workload")} <= events  # its watch streams


def test_orjson_gives_what_the_standard_library_gives():
    line = json.dumps({"type": "MODIFIED", "object": {
        "metadata": {"name": "train-1", "uid": "u-1", "labels": {"é": "ü"}, "deletionGracePeriodSeconds": 0},
        "status": {"phase": "Succeeded", "exitCode": -1, "ratio": 0.25, "ready": False, "message": None,
                   "conditions": [], "text": "line\nbreak \u2028 \"quoted\""}}}, ensure_ascii=False)
    assert kopf_json.JSON.loads(line) == json.loads(line) == orjson.loads(line.encode())
    with pytest.raises(json.JSONDecodeError):  # what kopf's stream would meet as a broken line: the same error
        kopf_json.JSON.loads('{"type": "MODIFIED", "object": {')


def test_the_operator_runs_with_kopfs_json_replaced_once():
    assert api.json is kopf_json.JSON and api.stream.__globals__["json"] is kopf_json.JSON  # what its stream reads
    assert api.get.__globals__["request"] is api.request and api.request.parses_with_orjson  # what its get calls
    assert kopf_json.parse_kopfs_json_with_orjson() is True  # again: not wrapped twice
    assert not getattr(api.request.__wrapped__, "parses_with_orjson", False)


def test_a_kopf_whose_api_module_moved_is_left_alone(monkeypatch, caplog):
    monkeypatch.setattr(kopf_json, "api", types.SimpleNamespace(json=json))  # a kopf without its request
    assert kopf_json.parse_kopfs_json_with_orjson() is False
    assert "parses JSON with the standard library" in caplog.text
