"""The emulator's Tables (devcluster/tables.py): ages, JSONPath cells and Accept negotiation, as a real server has them."""

import datetime

import pytest

from workload_operator.devcluster.tables import NotAcceptable, TableRequest, age, human_duration, json_path, typed_cell

KUBECTL_GET = ('application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,'
               'application/json')
MINUTE, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(("seconds", "shown"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (10 * MINUTE, "10m"), (179 * MINUTE, "179m"), (3 * HOUR, "3h"), (3 * HOUR + 5 * MINUTE, "3h5m"),
    (8 * HOUR, "8h"), (47 * HOUR, "47h"), (2 * DAY, "2d"), (2 * DAY + 3 * HOUR, "2d3h"), (8 * DAY, "8d"),
    (729 * DAY, "729d"), (2 * 365 * DAY, "2y"), (3 * 365 * DAY + 4 * DAY, "3y4d"), (9 * 365 * DAY, "9y"),
])
def test_human_duration_is_kubectls(seconds, shown):
    assert human_duration(seconds) == shown


def test_age_of_a_timestamp():
    now = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
    assert age("2025-01-01T11:57:30Z", now) == "2m30s"
    assert age("yesterday", now) == "<invalid>"
    assert age(None, now) is None


def test_json_path_cells():
    obj = {"status": {"state": "running", "attempts": 2, "ok": True, "items": [{"a": 1}]},
           "metadata": {"labels": {"app.kubernetes.io/name": "x"}}}
    assert json_path(".status.state")(obj) == "running"
    assert json_path(".status.items[0].a")(obj) == 1
    assert json_path(".metadata.labels['app.kubernetes.io/name']")(obj) == "x"
    assert json_path(".status.missing.deeper")(obj) is None and json_path(".status.items[3]")(obj) is None
    with pytest.raises(ValueError, match="unsupported JSONPath"):
        json_path(".status[?(@.a)]")
    assert typed_cell("integer", 2.0) == 2 and typed_cell("integer", "2") is None
    assert typed_cell("string", 3) == "3" and typed_cell("string", True) == "true"
    assert typed_cell("string", {"a": 1}) == '{"a":1}' and typed_cell("boolean", True) is True


@pytest.mark.parametrize(("accept", "version"), [
    (KUBECTL_GET, "v1"), ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "v1beta1"),
    ("application/json", None), ("*/*", None), ("", None), ("application/json, */*", None),
    ("application/vnd.kubernetes.protobuf,application/json", None),
    ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json", None),
])
def test_negotiation(accept, version):
    table = TableRequest.negotiate(accept, {})
    assert (table.version if table else None) == version


def test_negotiation_refuses_what_it_cannot_send():
    with pytest.raises(NotAcceptable) as refused:
        TableRequest.negotiate("application/vnd.kubernetes.protobuf", {})
    assert refused.value.code == 406
    with pytest.raises(NotAcceptable) as refused:
        TableRequest.negotiate(KUBECTL_GET, {"includeObject": "Everything"})
    assert refused.value.code == 400
