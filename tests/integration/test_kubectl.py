"""The emulated API as the real `kubectl` sees it: what the README tells a newcomer to try against `dev`.

Skipped where the machine has no kubectl; test_emulator.py sends the same requests, shaped as kubectl sends them.
"""
import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable

import pytest

from tests.integration.test_emulator import MERGE, ok
from workload_operator.devcluster.control_plane import write_kubeconfig
from workload_operator.devcluster.emulator import KubeAPIServer

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine (test_emulator.py sends its requests)")

WLS = "/apis/ml.lifecycle.dev/v1alpha1/namespaces/default/workloads"
Kubectl = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture()
def kubectl(kube_api: KubeAPIServer, tmp_path) -> tuple[Kubectl, list[str]]:
    """Run kubectl against the emulator (its own discovery cache, so nothing is carried between tests)."""
    config = write_kubeconfig(tmp_path / "kubeconfig", str(kube_api.url).rstrip("/"), "token")
    command = [KUBECTL, "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "cache")]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}

    async def run(*args: str, timeout: float = 30) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(*command, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), timeout)
        return process.returncode or 0, out.decode(), err.decode()
    return run, command


async def a_finished_workload(api: KubeAPIServer) -> dict:
    """A Workload, its pod and an Event, as the operator leaves them when a batch job has completed."""
    await ok(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "default"}})
    created = await ok(api, "POST", WLS, {"apiVersion": "ml.lifecycle.dev/v1alpha1", "kind": "Workload",
                                          "metadata": {"name": "train"}, "spec": {"image": "x", "type": "batch"}})
    await ok(api, "PATCH", f"{WLS}/train/status", {"status": {
        "state": "completed", "attempts": 1, "podsReady": "0/1", "reason": "Completed", "message": "the result was collected",
        "conditions": [{"type": "Finished", "status": "True", "reason": "Completed"}]}}, MERGE)
    pod = {"metadata": {"name": "train-1"}, "spec": {"containers": [{"name": "main", "image": "x"}]}}
    await ok(api, "POST", "/api/v1/namespaces/default/pods", pod)
    await ok(api, "PATCH", "/api/v1/namespaces/default/pods/train-1/status", {"status": {
        "phase": "Succeeded", "containerStatuses": [{"name": "main", "ready": False, "restartCount": 0,
                                                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}},
             MERGE)
    involved = {"apiVersion": "ml.lifecycle.dev/v1alpha1", "kind": "Workload", "name": "train", "namespace": "default",
                "uid": created["metadata"]["uid"]}
    for name, obj in (("train.1", involved), ("other.1", {**involved, "uid": "an-earlier-train"})):
        await ok(api, "POST", "/api/v1/namespaces/default/events", {
            "metadata": {"name": name}, "involvedObject": obj, "reason": "Completed", "type": "Normal",
            "message": f"collecting → completed ({name})", "source": {"component": "workload-operator"}})
    return created


async def test_get_shows_the_crds_printer_columns_and_pods(kube_api: KubeAPIServer, kubectl) -> None:
    run, _ = kubectl
    await a_finished_workload(kube_api)
    code, out, err = await run("get", "mlwl")
    assert code == 0 and err == "", err  # no warning that `mlwl` could also match workloads/status
    header, row = out.splitlines()
    assert header.split() == ["NAME", "STATE", "TYPE", "READY", "ATTEMPTS", "REASON", "AGE"]
    assert row.split()[:6] == ["train", "completed", "batch", "0/1", "1", "Completed"]
    code, out, err = await run("get", "mlwl", "-o", "wide")
    assert out.splitlines()[0].split()[-1] == "MESSAGE" and "the result was collected" in out
    code, out, err = await run("get", "pods")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:4] == ["train-1", "0/1", "Completed", "0"]


async def test_describe_shows_the_objects_events(kube_api: KubeAPIServer, kubectl) -> None:
    run, _ = kubectl
    await a_finished_workload(kube_api)
    code, out, err = await run("describe", "mlwl", "train")
    assert code == 0, err
    events = out.split("\nEvents:")[1]
    assert "collecting → completed (train.1)" in events and "workload-operator" in events
    assert "an-earlier" not in events and "other.1" not in events  # another object's, by uid


async def test_wait_for_a_condition_and_a_state(kube_api: KubeAPIServer, kubectl) -> None:
    run, _ = kubectl
    await a_finished_workload(kube_api)
    code, out, err = await run("wait", "--for=condition=Finished", "mlwl/train", "--timeout=10s")
    assert (code, out.strip()) == (0, "workload.ml.lifecycle.dev/train condition met"), err
    code, out, err = await run("wait", "--for=jsonpath={.status.state}=completed", "mlwl/train", "--timeout=10s")
    assert code == 0, err


async def test_get_watch_prints_each_change_as_a_row(kube_api: KubeAPIServer, kubectl) -> None:
    _, command = kubectl
    await a_finished_workload(kube_api)
    process = await asyncio.create_subprocess_exec(*command, "get", "mlwl", "-w", stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert (await process.stdout.readline()).decode().split()[:2] == ["NAME", "STATE"]
            assert (await process.stdout.readline()).decode().split()[:2] == ["train", "completed"]
            await ok(kube_api, "POST", WLS, {"metadata": {"name": "next"}, "spec": {"image": "x", "type": "batch"}})
            assert (await process.stdout.readline()).decode().split()[:2] == ["next", "batch"]  # no state yet
            await ok(kube_api, "PATCH", f"{WLS}/next/status", {"status": {"state": "queued", "attempts": 0}}, MERGE)
            assert (await process.stdout.readline()).decode().split()[:4] == ["next", "queued", "batch", "0"]
    finally:
        process.terminate()
        await process.wait()
