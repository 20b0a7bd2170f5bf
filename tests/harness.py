"""What the integration and cluster tiers share: a client for the test's side, a simulated kubelet,
the operator under KopfRunner, and waiting on conditions with a deadline.

Everything goes through the official client, so the same scenarios run against kmock's
emulator and against a real kube-apiserver (with the kubeconfig's credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import logging
import os
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp.web
import kubernetes
import yaml
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster import control_plane
from workload_operator.lifecycle import State, TRANSITIONS

T = TypeVar("T")
DEADLINE = float(os.environ.get("WORKLOAD_TEST_DEADLINE", "15"))  # seconds any one condition may take
MERGE_PATCH = "application/merge-patch+json"


def write_kubeconfig(path: pathlib.Path, server: str, token: str = "test-token") -> pathlib.Path:
    return control_plane.write_kubeconfig(path, server, token)


@contextlib.asynccontextmanager
async def stand_in_api(app: aiohttp.web.Application, folder: pathlib.Path,
                       token: str = "test-token") -> AsyncIterator[pathlib.Path]:
    """Serve ``app`` (a small stand-in for an API server) on a free local port until the block ends; yields a
    kubeconfig for it."""
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield write_kubeconfig(folder / "stand-in-kubeconfig", f"http://127.0.0.1:{runner.addresses[0][1]}", token)
    finally:
        await runner.cleanup()


def client_configuration(kubeconfig: pathlib.Path) -> kubernetes.client.Configuration:
    """The official client's Configuration, loaded from ``kubeconfig`` as the operator loads it."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return configuration


async def wait_for(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last seen: {last!r})")


CORPUS = yaml.safe_load((pathlib.Path(__file__).parent / "corpus" / "bad_workloads.yaml").read_text())["cases"]


def parse_time(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def pass_time_until(stamp: str, seconds: float) -> None:
    """Let wall-clock time pass to ``stamp + seconds`` (a time the scenario reads from the status), plus a margin."""
    moment = parse_time(stamp) + datetime.timedelta(seconds=seconds + 0.2)
    await asyncio.sleep(max(0.0, (moment - datetime.datetime.now(datetime.UTC)).total_seconds()))


def assert_valid_history(workload: dict[str, Any]) -> list[tuple[str | None, str]]:
    """The recorded history is a connected path along the map: no gap, no duplicate. Returns its edges."""
    history = workload["status"]["history"]
    edges = [(entry.get("from"), entry["to"]) for entry in history]
    assert edges[0] == (None, "queued"), edges
    for (_, previous_to), (source, target) in zip(edges, edges[1:]):
        assert source == previous_to, f"gap or duplicate in {edges}"
        assert State(target) in TRANSITIONS[State(source)], f"{source} -> {target} is not an edge: {edges}"
    assert workload["status"]["state"] == edges[-1][1]
    assert workload["status"]["transitions"] == len(edges)
    return edges


class Cluster:
    """The test's own view of the API: create and change Workloads, play the kubelet, read results."""

    def __init__(self, kubeconfig: pathlib.Path, namespace: str) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self.api_client = kubernetes.client.ApiClient(configuration)
        self.custom = kubernetes.client.CustomObjectsApi(self.api_client)
        self.core = kubernetes.client.CoreV1Api(self.api_client)
        self.namespace = namespace
        # Set by the cluster tier on its own control plane: a real garbage collector runs, and the API server's
        # audit log tells who sent each request.
        self.garbage_collector = False
        self.audit_log: pathlib.Path | None = None

    def operator_wrote(self, namespace: str, resource: str, name: str) -> bool:
        """Whether the operator sent any write for that object, by the API server's audit log (cluster tier)."""
        assert self.audit_log is not None
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            target = event.get("objectRef") or {}
            if (event.get("user", {}).get("username") == control_plane.OPERATOR_USER
                    and event.get("verb") not in ("get", "list", "watch")
                    and (target.get("namespace"), target.get("resource"), target.get("name")) == (namespace, resource, name)):
                return True
        return False

    def elsewhere(self, namespace: str) -> Cluster:
        """The same client, working in another namespace."""
        other = copy.copy(self)
        other.namespace = namespace
        return other

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        response = await asyncio.to_thread(fn, *args, _preload_content=False, **kwargs)
        return json.loads(response.data) if response.data else None

    async def create_namespace(self) -> None:
        """The namespace, and its `default` ServiceAccount: without a controller-manager nobody creates it, and
        a server with ServiceAccount admission on refuses pods until it exists."""
        # Pod Security "privileged": the tests' pods carry no securityContext, whatever the cluster's default level.
        labels = {"pod-security.kubernetes.io/enforce": "privileged"}
        await self._create_unless_there(self.core.create_namespace,
                                        {"metadata": {"name": self.namespace, "labels": labels}})
        await self._create_unless_there(self.core.create_namespaced_service_account, self.namespace,
                                        {"metadata": {"name": "default"}})

    async def _create_unless_there(self, create: Callable[..., Any], *args: Any) -> None:
        try:
            await self._call(create, *args)
        except ApiException as exc:
            if exc.status != 409:
                raise

    # --- Workloads -------------------------------------------------------------------------------

    async def create_workload(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": {"image": "busybox", **spec}}
        return await self._call(self.custom.create_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, body)

    async def create_raw(self, name: str, spec: Any, *, strict: bool = False) -> dict[str, Any]:
        """Create a Workload with exactly this spec (anything: the corpus of bad input uses it)."""
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload",
                "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}
        options = {"field_validation": "Strict"} if strict else {}
        return await self._call(self.custom.create_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                                body, **options)

    async def workload(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_spec(self, name: str, **changes: Any) -> dict[str, Any]:
        return await self._call(self.custom.patch_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                                name, {"spec": changes}, _content_type=MERGE_PATCH)

    async def patch_status(self, name: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._call(self.custom.patch_namespaced_custom_object_status, GROUP, VERSION, self.namespace,
                                PLURAL, name, ops, _content_type="application/json-patch+json")

    async def delete_workload(self, name: str) -> None:
        await self._call(self.custom.delete_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name)

    async def force_delete_workload(self, name: str) -> None:
        """Delete it and strip its finalizers, as a user tired of waiting does: gone now, whatever the operator does."""
        await self.delete_workload(name)
        try:
            await self._call(self.custom.patch_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                             name, {"metadata": {"finalizers": None}}, _content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:  # released meanwhile
                raise
        await self.wait_gone(name)

    async def events_for(self, name: str) -> list[dict[str, Any]]:
        events = await self._call(self.core.list_namespaced_event, self.namespace)
        return [e for e in events["items"] if e["involvedObject"]["name"] == name]

    async def wait_events(self, name: str, count: int, timeout: float = DEADLINE) -> list[dict[str, Any]]:
        """The Events on a Workload once there are ``count`` (they are posted just after each status write)."""
        async def enough() -> list[dict[str, Any]] | None:
            events = await self.events_for(name)
            return events if len(events) >= count else None
        return await wait_for(enough, f"{count} events on {name}", timeout)

    async def wait_state(self, name: str, state: str, timeout: float = DEADLINE) -> dict[str, Any]:
        seen: list[Any] = ["nothing"]

        async def reached() -> dict[str, Any] | None:
            workload = await self.workload(name)
            status = (workload or {}).get("status") or {}
            seen[0] = (status.get("state"), status.get("reason"), status.get("message")) if workload else "no Workload"
            return workload if status.get("state") == state else None
        try:
            return await wait_for(reached, f"workload {name} to be {state}", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its (state, reason, message) then: {seen[0]!r}") from None

    async def wait_reason(self, name: str, reason: str, timeout: float = DEADLINE) -> dict[str, Any]:
        async def said() -> dict[str, Any] | None:
            workload = await self.workload(name)
            return workload if workload and (workload.get("status") or {}).get("reason") == reason else None
        return await wait_for(said, f"workload {name} to say {reason}", timeout)

    async def wait_gone(self, name: str, timeout: float = DEADLINE) -> None:
        async def gone() -> bool:
            return await self.workload(name) is None
        await wait_for(gone, f"workload {name} to be deleted", timeout)

    # --- Pods: the simulated kubelet ---------------------------------------------------------------

    async def pod(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._call(self.core.read_namespaced_pod, name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def wait_pod(self, name: str, timeout: float = DEADLINE) -> dict[str, Any]:
        return await wait_for(lambda: self.pod(name), f"pod {name} to exist", timeout)

    async def wait_pod_gone(self, name: str, timeout: float = DEADLINE) -> None:
        async def gone() -> bool:
            return await self.pod(name) is None
        await wait_for(gone, f"pod {name} to be deleted", timeout)

    async def pods_version(self) -> str:
        """The resourceVersion of the namespace's pods now: ``pod_changes`` replays every change after it."""
        listing = await self._call(self.core.list_namespaced_pod, self.namespace)
        return listing["metadata"]["resourceVersion"]

    async def pod_changes(self, since: str, until: Callable[[list[dict[str, Any]]], bool],
                          timeout: float = DEADLINE) -> list[dict[str, Any]]:
        """The namespace's pods' watch events after resourceVersion ``since`` (``pods_version``), read until
        ``until(events)`` holds. The API server replays them from ``since``: a state a pod was in only for a
        moment is among them however late this reads, where a poll of the pod could miss it."""
        def read() -> list[dict[str, Any]]:
            events: list[dict[str, Any]] = []
            watch = kubernetes.watch.Watch(return_type="object")  # the objects as the server sent them
            for event in watch.stream(self.core.list_namespaced_pod, self.namespace, resource_version=since,
                                      timeout_seconds=max(1, round(timeout))):
                events.append({"type": event["type"], "object": event["raw_object"]})
                if until(events):
                    watch.stop()
                    break
            return events
        events = await asyncio.to_thread(read)
        seen = [(e["type"], e["object"]["metadata"].get("name")) for e in events]
        assert until(events), f"the pods' changes since {since} ended (after {timeout}s) short of that: {seen}"
        return events

    async def create_foreign_pod(self, name: str, *, namespace: str | None = None, labels: dict[str, str] | None = None,
                                 owner_uid: str | None = None) -> dict[str, Any]:
        """A pod someone else made (a decoy when it carries the operator's labels or a Workload's uid)."""
        meta: dict[str, Any] = {"name": name, "labels": labels or {"app": "someone-else"}}
        if owner_uid is not None:
            meta["ownerReferences"] = [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workload", "name": name,
                                        "uid": owner_uid, "controller": True}]
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"containers": [{"name": "db", "image": "postgres"}], "automountServiceAccountToken": False}}
        return await self._call(self.core.create_namespaced_pod, namespace or self.namespace, body)

    async def bind_pod(self, name: str, node: str = "node-1") -> None:
        """Put the pod on a node, as the scheduler does (pods/binding). Deleting it then waits for that node's
        kubelet to confirm, which a lost node never does."""
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        await self._call(self.core.create_namespaced_pod_binding, name, self.namespace, body)

    async def confirm_pod_deleted(self, pod: dict[str, Any]) -> None:
        """What a pod's kubelet does once its containers have stopped: the final delete, with grace 0, of that pod
        (by its uid). Until then a pod bound to a node stays, terminating."""
        await self._call(self.core.delete_namespaced_pod, pod["metadata"]["name"], self.namespace,
                         body={"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}})

    async def collect_garbage(self, pod: dict[str, Any]) -> None:
        """Delete a pod whose owner is gone, as the garbage collector would (none runs here): that pod, by its uid,
        and no newer one of its name; gone already is fine."""
        meta = pod["metadata"]
        try:
            await self._call(self.core.delete_namespaced_pod, meta["name"], self.namespace,
                             body={"preconditions": {"uid": meta["uid"]}})
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # --- Nodes: what a kubelet registers and renews (the cluster tier, where real controllers read them) ------

    async def create_node(self, name: str, gpus: int = 8) -> dict[str, Any]:
        """A Node as a kubelet registers it: Ready, with its capacity (GPUs as NVIDIA's device plugin reports them),
        and its heartbeat Lease in kube-node-lease. ``heartbeat`` renews both."""
        capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
        await self._call(self.core.create_node, {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
        await self._call(self.core.patch_node_status, name, {"status": {"capacity": capacity, "allocatable": capacity}},
                         _content_type=MERGE_PATCH)
        await self.heartbeat(name)

        async def schedulable() -> dict[str, Any] | None:  # the node controller's not-ready taint, until it sees Ready
            node = await self._call(self.core.read_node, name)
            return node if not node["spec"].get("taints") else None
        return await wait_for(schedulable, f"node {name} to lose its taints")

    async def heartbeat(self, name: str) -> None:
        """What a kubelet does every few seconds: renew its node's Lease, and report the node Ready."""
        now = datetime.datetime.now(datetime.UTC)
        lease = {"metadata": {"name": name}, "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                                      "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
        coordination = kubernetes.client.CoordinationV1Api(self.api_client)
        try:
            await self._call(coordination.patch_namespaced_lease, name, "kube-node-lease", lease,
                             _content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise
            await self._call(coordination.create_namespaced_lease, "kube-node-lease", lease)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        await self._call(self.core.patch_node_status, name, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
             "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]}}, _content_type="application/strategic-merge-patch+json")

    @contextlib.asynccontextmanager
    async def node(self, name: str, gpus: int = 8, period: float = 1.0) -> AsyncIterator[asyncio.Event]:
        """A Node whose kubelet heartbeats every ``period`` seconds until the event yielded is set (the node is
        lost) or the block ends; the Node and its Lease are deleted then."""
        await self.create_node(name, gpus)
        lost = asyncio.Event()

        async def beat() -> None:
            while not lost.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(lost.wait(), period)
                if not lost.is_set():
                    await self.heartbeat(name)

        task = asyncio.create_task(beat())
        try:
            yield lost
        finally:
            lost.set()
            await task
            coordination = kubernetes.client.CoordinationV1Api(self.api_client)
            for delete, args in ((self.core.delete_node, (name,)),
                                 (coordination.delete_namespaced_lease, (name, "kube-node-lease"))):
                with contextlib.suppress(ApiException):
                    await self._call(delete, *args)

    async def create_foreign_service(self, name: str) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": "payments"}},
                "spec": {"selector": {"app": "payments"}, "ports": [{"port": 443}]}}
        return await self._call(self.core.create_namespaced_service, self.namespace, body)

    async def service(self, name: str) -> dict[str, Any] | None:
        try:
            return await self._call(self.core.read_namespaced_service, name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def label_pod(self, name: str, **labels: str | None) -> dict[str, Any]:
        """Set (or, with None, remove) labels of a pod, as a person with kubectl label may."""
        return await self._call(self.core.patch_namespaced_pod, name, self.namespace, {"metadata": {"labels": labels}},
                                _content_type=MERGE_PATCH)

    async def set_pod_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Write the pod's status the way a kubelet does: through pods/status."""
        return await self._call(self.core.patch_namespaced_pod_status, name, self.namespace, {"status": status},
                                _content_type=MERGE_PATCH)

    async def pod_running(self, name: str) -> dict[str, Any]:
        return await self.set_pod_status(name, {
            "phase": "Running",
            "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0, "image": "busybox", "imageID": "",
                                   "state": {"running": {"startedAt": "2026-11-23T12:00:00Z"}}}],
        })

    async def pod_ready(self, name: str, ready: bool = True) -> dict[str, Any]:
        """The kubelet's readiness probe result, as the pod's Ready condition."""
        status = "True" if ready else "False"
        return await self.set_pod_status(name, {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": status}, {"type": "ContainersReady", "status": status}],
            "containerStatuses": [{"name": "main", "ready": ready, "restartCount": 0, "image": "busybox", "imageID": "",
                                   "state": {"running": {"startedAt": "2026-11-23T12:00:00Z"}}}],
        })

    async def pod_lost(self, name: str, how: str) -> None:
        """Lose the worker the way the infrastructure does: deleted, evicted, disrupted or its node lost."""
        if how == "deleted":
            await self._call(self.core.delete_namespaced_pod, name, self.namespace)
        elif how == "evicted":
            await self.set_pod_status(name, {"phase": "Failed", "reason": "Evicted",
                                             "message": "The node was low on resource: memory."})
        elif how == "disrupted":
            await self.set_pod_status(name, {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                                             "reason": "PreemptionByScheduler"}]})
        elif how == "node-lost":
            await self.set_pod_status(name, {"conditions": [{"type": "Ready", "status": "Unknown",
                                                             "reason": "NodeStatusUnknown"}]})
        else:
            raise ValueError(how)

    async def start_running(self, name: str, **spec: Any) -> dict[str, Any]:
        """Create a Workload and play its pod up to running: the common start of most scenarios."""
        await self.create_workload(name, **spec)
        await self.wait_pod(f"{name}-1")
        await self.pod_running(f"{name}-1")
        return await self.wait_state(name, "running")

    async def pod_exited(self, name: str, exit_code: int, *, reason: str = "", message: str = "") -> dict[str, Any]:
        """The main container ended: the pod is finished, and no longer Ready (as a kubelet reports it)."""
        return await self.set_pod_status(name, {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"},
                           {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [{"name": "main", "ready": False, "restartCount": 0, "image": "busybox", "imageID": "",
                                   "state": {"terminated": {
                                       "exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                                       "message": message, "startedAt": "2026-11-23T12:00:00Z",
                                       "finishedAt": "2026-11-23T12:05:00Z"}}}],
        })


class Operator:
    """The real operator under KopfRunner, in its own thread and loop; can be stopped and started again."""

    def __init__(self, *namespaces: str) -> None:
        self.namespaces = namespaces
        self.runner: KopfRunner | None = None

    async def start(self) -> None:
        assert self.runner is None
        served = [option for namespace in self.namespaces for option in ("--namespace", namespace)]
        self.runner = KopfRunner(["run", "-m", "workload_operator.handlers", "--standalone", *served, "--verbose"],
                                 timeout=30)
        await asyncio.to_thread(self.runner.__enter__)

    async def stop(self) -> str:
        """Stop the operator; returns what it printed."""
        assert self.runner is not None
        runner, self.runner = self.runner, None
        await asyncio.to_thread(runner.__exit__, None, None, None)
        return runner.output



class AuditRecorder(logging.Handler):
    """Collects the operator's JSON audit lines (from any thread) while attached."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))

    def transitions(self, workload: str) -> list[tuple[str | None, str]]:
        return [(line["from"], line["to"]) for line in self.lines if line["workload"] == workload]

    async def wait_transitions(self, workload: str, count: int, timeout: float = DEADLINE) -> list[tuple[str | None, str]]:
        """The workload's audit lines once there are ``count`` of them: a line follows the status write it reports,
        so a client can see the write before the operator has logged it."""
        async def enough() -> list[tuple[str | None, str]] | None:
            lines = self.transitions(workload)
            return lines if len(lines) >= count else None
        return await wait_for(enough, f"{count} audit lines of {workload}", timeout)
