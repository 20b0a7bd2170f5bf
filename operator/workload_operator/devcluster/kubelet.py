"""A simulated kubelet: plays the operator's pods through their phases by writing pods/status.

There is no scheduler and no container runtime in a development cluster; this stands in for both,
for the operator's pods only (selected by label). What a pod does is read from the annotations of
its Workload (the pod's controller owner), which only this simulation reads, so nothing of it reaches a
real pod:

    ml.lifecycle.dev/dev-run-seconds  how long the container runs (default 3); services run until deleted
    ml.lifecycle.dev/dev-exit-code    how it exits (default 0)
    ml.lifecycle.dev/dev-result       its termination message (default {"simulated": true})

Tests may set the same in the main container's environment instead (SIMULATE_RUN_SECONDS,
SIMULATE_EXIT_CODE, SIMULATE_RESULT); the Workload's annotations win.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import threading
from typing import Any

import kubernetes

from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster.watching import watch
from workload_operator.manifests import POD_SELECTOR

MERGE_PATCH = "application/merge-patch+json"
START_DELAY = 0.5  # "scheduling and pulling the image"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _main(pod: dict[str, Any]) -> dict[str, Any]:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return next((c for c in containers if c.get("name") == "main"), containers[0])


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in _main(pod).get("env") or [] if "name" in e}


HINTS = {f"{GROUP}/dev-run-seconds": "SIMULATE_RUN_SECONDS", f"{GROUP}/dev-exit-code": "SIMULATE_EXIT_CODE",
         f"{GROUP}/dev-result": "SIMULATE_RESULT"}


def _container(image: str, state: dict[str, Any], ready: bool) -> list[dict[str, Any]]:
    return [{"name": "main", "image": image, "imageID": "", "ready": ready, "restartCount": 0, "state": state}]


class SimulatedKubelet:
    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = threading.Event()

    async def run(self) -> None:
        """Watch the operator's pods until cancelled; play each new one in its own task."""
        try:
            async for event in watch(self.core.list_pod_for_all_namespaces, self._stop, label_selector=POD_SELECTOR):
                pod = event["object"]
                key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                if event["type"] == "DELETED":
                    if (task := self.tasks.pop(key, None)) is not None:
                        task.cancel()
                elif key not in self.tasks and not (pod.get("status") or {}).get("containerStatuses"):
                    self.tasks[key] = asyncio.create_task(self._play(pod))
        finally:
            self._stop.set()
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def _play(self, pod: dict[str, Any]) -> None:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        main = _main(pod)
        image, env = main.get("image", ""), {**_env(pod), **await self._hints(pod)}
        serves = "readinessProbe" in main
        with contextlib.suppress(kubernetes.client.ApiException):  # the pod may be deleted at any time
            await asyncio.sleep(START_DELAY)
            started = _now()
            running = {"running": {"startedAt": started}}
            await self._write(namespace, name, {
                "phase": "Running", "startTime": started,
                "conditions": [{"type": "Ready", "status": "True" if serves else "False"}],
                "containerStatuses": _container(image, running, ready=serves),
            })
            if serves:
                return  # a server runs until its pod is deleted
            await asyncio.sleep(float(env.get("SIMULATE_RUN_SECONDS", "3")))
            code = int(env.get("SIMULATE_EXIT_CODE", "0"))
            message = env.get("SIMULATE_RESULT", json.dumps({"simulated": True})) if code == 0 else \
                env.get("SIMULATE_RESULT", f"simulated failure: exit code {code}")
            terminated = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                         "message": message, "startedAt": started, "finishedAt": _now()}}
            await self._write(namespace, name, {
                "phase": "Succeeded" if code == 0 else "Failed",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": _container(image, terminated, ready=False),
            })

    async def _hints(self, pod: dict[str, Any]) -> dict[str, str]:
        """The dev hints among the annotations of the pod's Workload, by their SIMULATE_* names."""
        owner = next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
        if owner is None:
            return {}
        try:
            workload = await asyncio.to_thread(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                               pod["metadata"]["namespace"], PLURAL, owner["name"])
        except kubernetes.client.ApiException:
            return {}
        annotations = workload.get("metadata", {}).get("annotations") or {}
        return {name: annotations[key] for key, name in HINTS.items() if key in annotations}

    async def _write(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await asyncio.to_thread(self.core.patch_namespaced_pod_status, name, namespace, {"status": status},
                                _content_type=MERGE_PATCH, _preload_content=False)
