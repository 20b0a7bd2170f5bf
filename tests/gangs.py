"""Gangs (spec.replicas > 1) on every tier: imported by tests/integration (the emulated API) and tests/cluster (a
real API server). A gang's pods are ``<workload>-<attempt>-<index>``; the tests play each pod's kubelet.

Every scenario checks that the history is a valid path of the map and, where the tier can count them, that
each transition cost exactly one status write (pod counts ride along, never a write of their own).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import Cluster, Operator, assert_valid_history, wait_for
from workload_operator.manifests import RETIRED_LABEL

pytestmark = pytest.mark.usefixtures("operator")

INDEX = "ml.lifecycle.dev/index"
HAPPY = [(None, "queued"), ("queued", "preparing"), ("preparing", "running"), ("running", "collecting"),
         ("collecting", "completed")]


def names(workload: str, attempt: int = 1, replicas: int = 4) -> list[str]:
    return [f"{workload}-{attempt}-{index}" for index in range(replicas)]


async def start_gang(cluster: Cluster, name: str, replicas: int = 4, **spec: Any) -> dict[str, Any]:
    """Create a gang and play every pod of its first attempt up to running."""
    await cluster.create_workload(name, replicas=replicas, **spec)
    for pod in names(name, 1, replicas):
        await cluster.wait_pod(pod)
        await cluster.pod_running(pod)
    return await cluster.wait_state(name, "running")


async def pods_of(cluster: Cluster, workload: str) -> dict[str, dict[str, Any]]:
    """The workload's pods that exist now, by name (through its label, as `kubectl get pods -l` finds them)."""
    listing = await cluster._call(cluster.core.list_namespaced_pod, cluster.namespace,
                                  label_selector=f"ml.lifecycle.dev/workload={workload}")
    return {pod["metadata"]["name"]: pod for pod in listing["items"]}


async def wait_pods(cluster: Cluster, workload: str, expected: set[str]) -> dict[str, dict[str, Any]]:
    """Wait until exactly ``expected`` of the workload's pods exist."""
    async def there():
        pods = await pods_of(cluster, workload)
        return (pods,) if set(pods) == expected else None  # truthy even when none is expected
    return (await wait_for(there, f"exactly {sorted(expected)} of {workload}'s pods"))[0]


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    main = next(c for c in pod["spec"]["containers"] if c["name"] == "main")
    return {e["name"]: e.get("value") for e in main.get("env") or []}


def said(audit, workload: str, to: str) -> str:
    """The message of the workload's (last) transition to ``to``, from the audit trail (history keeps reasons only)."""
    return [line["message"] for line in audit.lines if (line["workload"], line["to"]) == (workload, to)][-1]


def pod_counts(workload: dict[str, Any]) -> tuple[dict[str, int], str]:
    return workload["status"]["pods"], workload["status"]["podsReady"]


async def test_a_gang_of_4_prepares_runs_and_completes_with_index_0s_result(cluster: Cluster, status_writes, audit):
    await cluster.create_workload("ddp", replicas=4, command=["torchrun", "train.py"])
    preparing = await cluster.wait_state("ddp", "preparing")
    assert preparing["status"]["reason"] == "PodsCreated"
    assert preparing["status"]["message"] == "4 pods created: ddp-1-0 … ddp-1-3"
    assert pod_counts(preparing) == ({"active": 4, "ready": 0, "succeeded": 0, "failed": 0}, "0/4")
    pods = await wait_pods(cluster, "ddp", set(names("ddp")))
    master = f"worker-0.ddp.{cluster.namespace}.svc"
    for index, name in enumerate(names("ddp")):
        pod = pods[name]
        assert pod["metadata"]["labels"][INDEX] == pod["metadata"]["annotations"][INDEX] == str(index)
        assert pod["metadata"]["labels"]["ml.lifecycle.dev/attempt"] == "1"
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (f"worker-{index}", "ddp")
        env = env_of(pod)
        assert {k: env[k] for k in ("PET_NNODES", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT",
                                    "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")} == {
            "PET_NNODES": "4", "PET_NODE_RANK": str(index), "PET_MASTER_ADDR": master, "PET_MASTER_PORT": "29500",
            "WORLD_SIZE": "4", "RANK": str(index), "MASTER_ADDR": master, "MASTER_PORT": "29500"}
    headless = await cluster.service("ddp")
    assert headless is not None and headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert set(headless["spec"]["selector"].items()) <= set(pods["ddp-1-3"]["metadata"]["labels"].items())

    for name in names("ddp")[:3]:  # three of four started: still preparing
        await cluster.pod_ready(name)
    still = await cluster.workload("ddp")
    await cluster.pod_ready("ddp-1-3")
    running = await cluster.wait_state("ddp", "running")
    assert still["status"]["state"] == "preparing"
    assert running["status"]["message"] == "all 4 pods are running"
    assert pod_counts(running) == ({"active": 4, "ready": 4, "succeeded": 0, "failed": 0}, "4/4")

    for index, name in enumerate(names("ddp")):  # index 0 is not the last: its result is collected all the same
        await cluster.pod_exited(name, 0, message='{"loss": 0.12}' if index == 0 else "rank done")
    workload = await cluster.wait_state("ddp", "completed")
    assert assert_valid_history(workload) == HAPPY
    status = workload["status"]
    assert said(audit, "ddp", "collecting") == "all 4 pods exited 0; collecting the result of pod ddp-1-0"
    assert status["attempts"] == 1
    assert (status["run"]["pod"], status["run"]["result"]) == ("ddp-1-0", {"loss": 0.12})
    assert pod_counts(workload) == ({"active": 0, "ready": 0, "succeeded": 4, "failed": 0}, "0/4")
    assert set(await pods_of(cluster, "ddp")) == set(names("ddp"))  # finished pods stay, for their logs
    assert status_writes("ddp") == len(HAPPY)  # one per transition: the pods' own changes cost none

    async def all_retired() -> bool:  # out of the operator's watch, every one of them
        return all(p["metadata"]["labels"].get(RETIRED_LABEL) == "true" for p in (await pods_of(cluster, "ddp")).values())
    await wait_for(all_retired, "the gang's pods retired")


async def test_one_rank_oom_killed_fails_the_gang_naming_it_and_deletes_the_running_pods(cluster: Cluster,
                                                                                        status_writes):
    await start_gang(cluster, "oom")
    await cluster.pod_exited("oom-1-3", 0)  # finished early: kept, like the failed one, for its logs
    await cluster.pod_exited("oom-1-2", 137, reason="OOMKilled", message="CUDA out of memory")
    workload = await cluster.wait_state("oom", "failed")
    status = workload["status"]
    assert status["reason"] == "OOMKilled"
    assert status["message"].startswith("pod oom-1-2: the main container ran out of memory (exit code 137)")
    assert (status["run"]["pod"], status["run"]["exitCode"]) == ("oom-1-2", 137)
    assert assert_valid_history(workload)[-1] == ("running", "failed")
    assert pod_counts(workload) == ({"active": 0, "ready": 0, "succeeded": 1, "failed": 1}, "0/4")
    await wait_pods(cluster, "oom", {"oom-1-2", "oom-1-3"})  # no GPU left held by a gang that cannot succeed
    assert status_writes("oom") == 4


async def test_a_lost_node_requeues_the_whole_gang_and_a_new_gang_of_4_completes(cluster: Cluster, status_writes,
                                                                                  audit):
    await start_gang(cluster, "elastic")
    await cluster.pod_lost("elastic-1-1", "node-lost")
    await wait_pods(cluster, "elastic", set(names("elastic", 2)))  # the old gang gone, a whole new one
    for name in names("elastic", 2):
        await cluster.pod_running(name)
    await cluster.wait_state("elastic", "running")
    for name in names("elastic", 2):
        await cluster.pod_exited(name, 0, message="2")
    workload = await cluster.wait_state("elastic", "completed")
    edges = assert_valid_history(workload)
    assert edges == [*HAPPY[:3], ("running", "orphaned"), ("orphaned", "queued"), ("queued", "preparing"),
                     *HAPPY[2:]]
    status = workload["status"]
    assert status["history"][3]["reason"] == "NodeLost"
    assert said(audit, "elastic", "orphaned").startswith("pod elastic-1-1: ")
    assert status["attempts"] == 2 and (status["run"]["pod"], status["run"]["result"]) == ("elastic-2-0", 2)
    pods = (await pods_of(cluster, "elastic")).values()
    assert {p["metadata"]["labels"]["ml.lifecycle.dev/attempt"] for p in pods} == {"2"}
    assert (await cluster.service("elastic")) is not None  # one headless Service for every attempt
    assert status_writes("elastic") == len(edges)


async def test_the_leader_policy_completes_when_index_0_exits_0_and_stops_the_others(cluster: Cluster,
                                                                                    status_writes, audit):
    await start_gang(cluster, "lead", successPolicy="leader")
    await cluster.pod_exited("lead-1-0", 0, message='{"score": 1}')
    workload = await cluster.wait_state("lead", "completed")
    assert assert_valid_history(workload) == HAPPY
    status = workload["status"]
    assert said(audit, "lead", "collecting") == \
        "pod lead-1-0 (index 0) exited 0; stopping the others, collecting its result"
    assert (status["run"]["pod"], status["run"]["result"]) == ("lead-1-0", {"score": 1})
    await wait_pods(cluster, "lead", {"lead-1-0"})
    assert status_writes("lead") == len(HAPPY)


async def _hold_until_confirmed(cluster: Cluster, workload: str, pods: list[str], still) -> None:
    """Every pod is deleted gracefully and waits for its kubelet (the test) to confirm; until the last one is
    gone, ``still()`` must hold. Then the kubelet confirms them one by one."""
    async def terminating():
        found = await pods_of(cluster, workload)
        return found if set(found) == set(pods) and all(p["metadata"].get("deletionTimestamp")
                                                          for p in found.values()) else None
    found = await wait_for(terminating, f"every pod of {workload} to be terminating")
    for name in pods[:-1]:
        await cluster.confirm_pod_deleted(found[name])
    await wait_pods(cluster, workload, {pods[-1]})
    assert await still(), f"{workload} let go before its last pod was gone"
    await cluster.confirm_pod_deleted(found[pods[-1]])


async def start_bound_gang(cluster: Cluster, name: str, replicas: int = 3) -> None:
    """A gang whose pods are on a node: deleting them waits for the kubelet's confirmation."""
    await cluster.create_workload(name, replicas=replicas)
    for pod in names(name, 1, replicas):
        await cluster.wait_pod(pod)
        await cluster.bind_pod(pod)
        await cluster.pod_running(pod)
    await cluster.wait_state(name, "running")


async def test_cancel_mid_run_deletes_every_pod_and_ends_cancelled_once_all_are_gone(cluster: Cluster, status_writes):
    await start_bound_gang(cluster, "stopme")
    await cluster.patch_spec("stopme", cancel=True)

    async def not_cancelled_yet() -> bool:
        return (await cluster.workload("stopme"))["status"]["state"] == "running"

    await _hold_until_confirmed(cluster, "stopme", names("stopme", 1, 3), not_cancelled_yet)
    workload = await cluster.wait_state("stopme", "cancelled")
    assert assert_valid_history(workload)[-1] == ("running", "cancelled")
    assert pod_counts(workload) == ({"active": 0, "ready": 0, "succeeded": 0, "failed": 0}, "0/3")
    assert status_writes("stopme") == 4


async def test_delete_mid_run_holds_the_workload_until_every_pod_is_gone(cluster: Cluster, status_writes, audit):
    await start_bound_gang(cluster, "doomed")
    await cluster.delete_workload("doomed")

    async def held() -> bool:
        workload = await cluster.workload("doomed")
        return workload is not None and bool(workload["metadata"].get("deletionTimestamp"))

    await _hold_until_confirmed(cluster, "doomed", names("doomed", 1, 3), held)
    await cluster.wait_gone("doomed")
    assert audit.transitions("doomed")[-1] == ("running", "cancelled")
    assert await cluster.service("doomed") is None  # the headless Service goes with it
    assert status_writes("doomed") == 4


async def test_a_service_gang_serves_when_index_0_is_ready_behind_a_service_that_selects_it_alone(
        cluster: Cluster, status_writes):
    await cluster.create_workload("vllm", replicas=3, type="service", port=8000)
    pods = await wait_pods(cluster, "vllm", set(names("vllm", 1, 3)))
    front, headless = await cluster.service("vllm"), await cluster.service("vllm-gang")
    assert front is not None and headless is not None
    assert front["spec"]["ports"][0]["port"] == 8000 and headless["spec"]["clusterIP"] == "None"
    selects = {name: set(front["spec"]["selector"].items()) <= set(pod["metadata"]["labels"].items())
               for name, pod in pods.items()}
    assert selects == {"vllm-1-0": True, "vllm-1-1": False, "vllm-1-2": False}
    assert all(set(headless["spec"]["selector"].items()) <= set(pod["metadata"]["labels"].items())
               for pod in pods.values())
    assert pods["vllm-1-1"]["spec"]["subdomain"] == "vllm-gang"
    assert env_of(pods["vllm-1-1"])["MASTER_ADDR"] == f"worker-0.vllm-gang.{cluster.namespace}.svc"

    await cluster.pod_ready("vllm-1-1")  # the workers' readiness does not make it serve
    await cluster.pod_ready("vllm-1-2")
    await cluster.pod_running("vllm-1-0")
    running = await cluster.wait_state("vllm", "running")
    assert pod_counts(running)[1] == "2/3"
    await cluster.pod_ready("vllm-1-0")
    workload = await cluster.wait_state("vllm", "serving")
    assert workload["status"]["endpoint"] == f"vllm.{cluster.namespace}.svc:8000"
    assert pod_counts(workload)[1] == "3/3"

    await cluster.patch_spec("vllm", cancel=True)
    workload = await cluster.wait_state("vllm", "completed")
    assert assert_valid_history(workload) == [
        (None, "queued"), ("queued", "preparing"), ("preparing", "running"), ("running", "serving"),
        ("serving", "stopping"), ("stopping", "completed")]
    await wait_pods(cluster, "vllm", set())
    assert status_writes("vllm") == 6


async def test_a_restart_mid_gang_applies_what_it_missed_once_and_makes_no_pod_twice(
        cluster: Cluster, status_writes, operator: Operator, audit):
    await cluster.create_workload("resume", replicas=4)
    await cluster.wait_state("resume", "preparing")
    await cluster.pod_running("resume-1-0")
    await cluster.pod_running("resume-1-1")
    await operator.stop()
    for index, name in enumerate(names("resume")):  # the whole gang runs and ends while nobody watches
        await cluster.pod_exited(name, 0, message=str(index))
    await operator.start()
    workload = await cluster.wait_state("resume", "completed")
    assert assert_valid_history(workload) == HAPPY
    assert await audit.wait_transitions("resume", len(HAPPY)) == HAPPY  # each logged once, across both runs
    assert workload["status"]["attempts"] == 1 and workload["status"]["run"]["result"] == 0
    assert set(await pods_of(cluster, "resume")) == set(names("resume"))  # no pod made twice, nor a new gang
    assert status_writes("resume") == len(HAPPY)


async def test_a_rank_that_fails_while_the_operator_is_down_fails_the_gang_on_return(
        cluster: Cluster, status_writes, operator: Operator, audit):
    await start_gang(cluster, "late", replicas=3)
    await operator.stop()
    await cluster.pod_exited("late-1-1", 1, message="NCCL error: unhandled system error")
    await operator.start()
    workload = await cluster.wait_state("late", "failed")
    assert workload["status"]["reason"] == "ExitCode"
    assert workload["status"]["message"].startswith("pod late-1-1: the main container exited with code 1: NCCL error")
    assert await audit.wait_transitions("late", 4) == assert_valid_history(workload) == [*HAPPY[:3], ("running", "failed")]
    await wait_pods(cluster, "late", {"late-1-1"})
    assert status_writes("late") == 4


async def test_a_pod_that_vanishes_while_preparing_takes_the_gang_with_it_and_a_new_one_is_made(
        cluster: Cluster, status_writes):
    await cluster.create_workload("flaky", replicas=3)
    await wait_pods(cluster, "flaky", set(names("flaky", 1, 3)))
    await cluster.wait_state("flaky", "preparing")
    await cluster.pod_running("flaky-1-0")
    await cluster._call(cluster.core.delete_namespaced_pod, "flaky-1-1", cluster.namespace)
    await wait_pods(cluster, "flaky", set(names("flaky", 2, 3)))  # never a mix of two attempts

    async def recorded():  # the pods are created first, then the status that counts them is written
        workload = await cluster.workload("flaky")
        return workload if workload["status"]["attempts"] == 2 else None

    workload = await wait_for(recorded, "the second attempt in status")
    assert (workload["status"]["state"], workload["status"]["reason"]) == ("preparing", "PodRecreated")
    message = workload["status"]["message"]
    # The API server writes the pod's deletionTimestamp before it removes it: the operator sees who it was.
    assert message == ("pod flaky-1-1: the pod was deleted by someone else while preparing; "
                       "3 pods created: flaky-2-0 … flaky-2-2"), message
    assert status_writes("flaky") == 4  # queued, preparing, which pod vanished (noted as the rest went), a new gang


async def test_a_gang_is_created_whole_or_not_at_all(cluster: Cluster, status_writes):
    # Index 2's name is taken by someone else's pod: the gang's first two pods must not wait on their nodes for it.
    theirs = await cluster.create_foreign_pod("whole-1-2", labels={"app.kubernetes.io/managed-by": "workload-operator"})
    await cluster.create_workload("whole", replicas=3)
    status = (await cluster.wait_reason("whole", "NameConflict"))["status"]
    assert (status["state"], status["attempts"]) == ("queued", 0)
    assert f"pod {cluster.namespace}/whole-1-2 already exists and is not this workload's" in status["message"]
    await wait_pods(cluster, "whole", set())  # the two it made are deleted (the foreign pod has no such label)
    assert (await cluster.pod("whole-1-2"))["metadata"]["uid"] == theirs["metadata"]["uid"]

    await cluster._call(cluster.core.delete_namespaced_pod, "whole-1-2", cluster.namespace)  # its owner frees the name
    await wait_pods(cluster, "whole", set(names("whole", 1, 3)))
    for name in names("whole", 1, 3):
        await cluster.pod_exited(name, 0)
    workload = await cluster.wait_state("whole", "completed")
    assert workload["status"]["attempts"] == 1 and assert_valid_history(workload) == HAPPY
    assert status_writes("whole") == len(HAPPY) + 1  # and the refusal, shown once


async def test_a_gang_takes_one_slot_of_the_queue(cluster: Cluster, operator: Operator, monkeypatch):
    await start_gang(cluster, "big", replicas=4)  # 4 pods, one workload: one slot of 2
    await operator.stop()  # (an operator stopped before it has settled takes seconds to stop: the gang goes first)
    monkeypatch.setenv("WORKLOAD_OPERATOR_MAX_ACTIVE_PER_NAMESPACE", "2")
    await operator.start()
    await cluster.create_workload("small")
    await cluster.wait_pod("small-1")
    await cluster.create_workload("third")
    waiting = await cluster.wait_reason("third", "WaitingForCapacity")
    assert "2 of 2 workloads active" in waiting["status"]["message"]
    for name in names("big"):
        await cluster.pod_exited(name, 0)
    await cluster.wait_state("big", "completed")
    await cluster.wait_pod("third-1")  # the gang's one slot is free again
