"""Bad input against a real API server: the CRD's schema and rules refuse what they can, naming the field;
what they accept, the operator fails with InvalidSpec naming the field."""

import json

import pytest
from kubernetes.client.exceptions import ApiException

from tests.harness import CORPUS, Cluster

pytestmark = pytest.mark.usefixtures("operator")


@pytest.mark.parametrize("case", CORPUS, ids=[case["name"] for case in CORPUS])
async def test_bad_input_is_refused_naming_the_field(cluster: Cluster, case):
    name = f"bad-{case['name']}"
    if case["server"] == "refuses":
        with pytest.raises(ApiException) as refused:
            await cluster.create_raw(name, case["spec"], strict=True)
        assert refused.value.status in (400, 422)
        message = json.loads(refused.value.body)["message"]
        assert case["field"] in message.replace("[", ".").replace("]", ""), message
    else:
        await cluster.create_raw(name, case["spec"], strict=True)
        workload = await cluster.wait_state(name, "failed")
        assert workload["status"]["reason"] == "InvalidSpec"
        assert case["field"] in workload["status"]["message"]


async def test_a_status_write_with_an_unknown_state_is_refused(cluster: Cluster):
    await cluster.create_workload("hand")
    await cluster.wait_state("hand", "preparing")
    with pytest.raises(ApiException) as refused:
        await cluster.patch_status("hand", [{"op": "replace", "path": "/status/state", "value": "exploded"}])
    assert refused.value.status == 422
    assert "status.state" in json.loads(refused.value.body)["message"]
