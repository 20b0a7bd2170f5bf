"""The benchmark's own checks: it drives every mode to the end and counts the operator's requests right,
on the emulated API and through the counting proxy that stands in for a real server's request log.

No timing is asserted here (timings belong in `python -m benchmarks.lifecycle`'s table): what is checked
is the operator's API traffic per workload, which is exact, and that both ways of counting agree.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json

import aiohttp
import aiohttp.web
import kubernetes
import pytest

from benchmarks import profile, requests
from benchmarks.apis import CountingProxy, emulated_api, proxied_api
from benchmarks.lifecycle import FLOORS, JOB_CONTROLLER, PATHS, main, one_run, operator_environment
from workload_operator import GROUP, PLURAL, VERSION
from workload_operator.devcluster.emulator import OPERATOR_AGENTS, KubeAPIServer, parse_resource_path
from workload_operator.kube import Kube
from workload_operator.lifecycle.decide import WorkloadView
from tests.harness import client_configuration, stand_in_api, write_kubeconfig

SIZE = 3
GANG, REPLICAS = 5, 3  # the gang mode's workloads, and pods each
# Per workload, beyond the watches: one Event per transition, and what each lifecycle needs.
OTHER_REQUESTS = {
    "batch": {"PATCH workloads": 1, "POST pods": 1, "PATCH pods": 1},     # the finalizer; the pod, retired once done
    "service": {"PATCH workloads": 1, "POST pods": 1, "POST services": 1, "DELETE pods": 1},  # stopping deletes it
    "worker-loss": {"PATCH workloads": 1, "POST pods": 2, "PATCH pods": 1},  # the lost pod is gone already
    "gang": {"PATCH workloads": 1, "POST services": 1},                   # the finalizer; the headless Service
}
SINGLE_POD_MODES = [mode for mode in PATHS if mode not in ("gang", JOB_CONTROLLER, *FLOORS)]  # the operator's


def expected_others(mode: str, size: int = SIZE, replicas: int = REPLICAS) -> collections.Counter[str]:
    """For a gang: ``replicas`` pods in one attempt, each retired once done, and nothing else per pod (its counts ride
    on the transitions)."""
    per_workload = {**OTHER_REQUESTS[mode], "POST events": len(PATHS[mode]),
                    **({"POST pods": replicas, "PATCH pods": replicas} if mode == "gang" else {})}
    return collections.Counter({what: count * size for what, count in per_workload.items()})


@pytest.mark.parametrize("mode", SINGLE_POD_MODES)
async def test_every_mode_costs_one_status_write_per_transition(mode):
    async with emulated_api() as api:
        run = await one_run(api, mode, SIZE, unrelated=0, timeout=60)

    assert run.status_writes == run.transitions  # one_run itself checks the transitions against the paths
    assert run.others == expected_others(mode)
    triggers = {"batch": 2, "service": 2, "worker-loss": 4}[mode]  # writes timed per workload
    assert len(run.latencies) == SIZE * triggers
    assert len(run.round_trips) == 200 and run.peak_rss_mb > 0 and run.connections > 0
    assert run.restart_writes == 0  # an operator restarted with nothing to do writes nothing
    assert run.restart_cpu > 0  # and its start-up, listing and settling are measured
    assert run.after_burst_kb != 0 and run.held_kb != 0  # what the burst left, and what a restart holds
    assert run.restart_rss_mb > 0  # and the whole of it, as a memory limit sees it
    assert run.server_cpu_seconds is None  # the emulator runs in this process: no server of its own to measure


async def test_workloads_left_running_meet_the_restart_and_stay_out_of_the_bursts_figures():
    """--running: after the burst, K more Workloads are played up to running and left there; the restarted operator
    finds them beside the finished ones, writes nothing, and the burst's requests and reactions are its own."""
    async with emulated_api() as api:
        run = await one_run(api, "batch", SIZE, unrelated=0, timeout=60, running=2)
        written = collections.Counter(route.name for request in api.log(0)
                                      if (route := parse_resource_path(request.path)) is not None
                                      and route.plural == PLURAL and route.subresource == "status")

    assert run.running == 2 and run.restart_writes == 0
    assert written["r0"] == written["r1"] == 3  # queued, preparing, running: left there
    assert run.pods == SIZE and len(run.latencies) == SIZE * 2 and run.others == expected_others("batch")
    with pytest.raises(ValueError, match="batch or gang"):
        await one_run(api, "service", SIZE, unrelated=0, timeout=60, running=2)


async def test_a_gang_costs_one_status_write_per_transition_whatever_its_pods_do():
    """5 workloads of 3 pods: 15 pods started and finished one by one, and yet 5 status writes per workload; the
    other requests are per workload (the finalizer, the headless Service, the Events), but for a POST and a PATCH
    (retired) per pod."""
    async with emulated_api() as api:
        run = await one_run(api, "gang", GANG, unrelated=0, timeout=60, replicas=REPLICAS)

    assert run.pods == GANG * REPLICAS and run.label == f"{GANG} × {REPLICAS} pods at once"
    assert run.status_writes == run.transitions == GANG * len(PATHS["gang"])
    assert run.others == expected_others("gang", GANG, REPLICAS)
    assert sum(run.others.values()) / run.pods == pytest.approx((1 + 1 + len(PATHS["gang"]) + 2 * REPLICAS) / REPLICAS)
    assert len(run.latencies) == GANG * 2  # each gang's last pod Running, then its last pod Succeeded
    assert run.restart_writes == 0


@pytest.mark.parametrize("mode", FLOORS)
async def test_the_floors_see_the_operators_writes_and_send_nothing(mode):
    """The floor rows: the driver makes the operator's writes (the statuses counted by the same core), and kopf set
    up as the operator sets it up but with handlers that do nothing, or bare watches, see them and write nothing,
    restarted too."""
    async with emulated_api() as api:
        run = await one_run(api, mode, SIZE, unrelated=0, timeout=60)
        watched = {r.path.rsplit("/", 1)[-1] for r in api.log(0) if r.agent.startswith(OPERATOR_AGENTS) and r.watch}

    assert run.transitions == SIZE * len(PATHS[mode]) and run.pods == SIZE
    assert run.status_writes == 0 and not run.others and run.restart_writes == 0
    assert {PLURAL, "pods"} <= watched  # kopf also watches namespaces
    assert not run.latencies and run.peak_rss_mb > 0  # no reaction to time (3 lifecycles' CPU may be 0 clock ticks)


async def test_a_profiled_run_measures_the_operator_under_py_spy_and_keeps_its_profiles(tmp_path):
    """`--profile DIR`: the figures are the operator's own process's (not py-spy's), and each profile, of the run
    and of the restart, holds the operator's stacks as `python -m benchmarks.profile` reads them."""
    size = 10  # enough watch events for py-spy's samples (100 a second) to find kopf processing them
    async with emulated_api() as api:
        run = await one_run(api, "batch", size, unrelated=0, timeout=60, profile=tmp_path)

    assert run.status_writes == run.transitions and run.restart_writes == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch-10-at-once-restart.txt", "batch-10-at-once.txt"]
    samples = profile.read(tmp_path / "batch-10-at-once.txt")
    assert any(any(frame.startswith("process_resource_event (") for frame in frames) for frames, _ in samples)
    text = profile.summary(samples, top=500)
    assert " process_resource_event (reactor/processing.py)" in text and "innermost (self):" in text


def test_a_baselines_environment_is_its_own(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONMALLOC", "malloc")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")  # the benchmark's operator is never in-cluster
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    ours = operator_environment()
    baseline = operator_environment(tmp_path, {"PYTHONMALLOC": "pymalloc", "EXTRA": "1"})

    assert ours["PYTHONMALLOC"] == "malloc" and ours["PYTHONPATH"] == "/elsewhere" and "EXTRA" not in ours
    assert baseline["PYTHONMALLOC"] == "pymalloc" and baseline["EXTRA"] == "1"
    assert baseline["PYTHONPATH"].split(":") == [str(tmp_path), "/elsewhere"]  # its package first
    assert "KUBERNETES_SERVICE_HOST" not in ours and "KUBERNETES_SERVICE_HOST" not in baseline


def test_a_baselines_environment_variable_is_name_equals_value(capsys):
    with pytest.raises(SystemExit):
        main(["--baseline-env", "PYTHONMALLOC"])
    assert "not NAME=VALUE: 'PYTHONMALLOC'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--baseline-env", "PYTHONMALLOC=pymalloc"])  # and there must be a baseline for it
    assert "it needs --baseline" in capsys.readouterr().err


def test_the_profile_summary_counts_a_recursive_function_once_per_sample(tmp_path):
    (tmp_path / "p.txt").write_text("main (a/b.py:1);f (a/c.py:2);f (a/c.py:3) 3\nmain (a/b.py:1);g (a/d.py:4) 1\n")
    lines = profile.summary(profile.read(tmp_path / "p.txt"), top=3).splitlines()
    assert lines[:4] == ["4 samples", "on the stack:", " 100.0%  main (a/b.py)", "  75.0%  f (a/c.py)"]
    assert lines[-2:] == ["  75.0%  f (a/c.py)", "  25.0%  g (a/d.py)"]


async def test_through_a_kubeconfig_the_proxy_counts_what_the_server_received(kube_api: KubeAPIServer, kubeconfig):
    """The kubeconfig mode, pointed at the emulator: the proxy's log and the server's own must agree. Gangs: every
    kind of request a batch run sends, and the headless Services (created, then removed with their Workloads)."""
    async with proxied_api(kubeconfig) as api:
        first = len(kube_api.requests_since(0))
        run = await one_run(api, "gang", SIZE, unrelated=2, timeout=60, replicas=REPLICAS)

    assert run.status_writes == run.transitions == SIZE * len(PATHS["gang"])
    assert run.others == expected_others("gang", SIZE, REPLICAS)
    # Every request the operator sent reached the server, through the proxy, with the proxy's credentials.
    received = [r for r in kube_api.requests_since(first) if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS)]
    assert {r.headers.get("Authorization") for r in received} == {"Bearer test-token"}
    logged = [(r.method, r.path) for r in api.log(0) if r.agent.startswith(OPERATOR_AGENTS)]
    assert collections.Counter((r.method.upper(), r.url.path) for r in received) == collections.Counter(logged)
    # A real server keeps what a run created: the run removed its Workloads, its pods and its namespace.
    async with aiohttp.ClientSession(str(kube_api.url)) as session:
        for path in (f"/apis/{GROUP}/{VERSION}/{PLURAL}", "/api/v1/pods", "/api/v1/services"):
            async with session.get(path) as response:
                assert (await response.json())["items"] == [], path
        async with session.get("/api/v1/namespaces") as response:
            assert not [n for n in (await response.json())["items"] if n["metadata"]["name"].startswith("bench-")]


async def test_the_request_costs_are_of_the_calls_a_lifecycle_makes(kube_api: KubeAPIServer, kubeconfig):
    """benchmarks.requests, pointed at the emulator: each kind of call made as many times as asked, by the operator's
    own client and as the operator makes it (the server's log says what reached it), and its namespace removed."""
    first = len(kube_api.requests_since(0))
    measured, _ = await requests.run(kubeconfig, calls=6, at_once=2)

    assert {calls.kind: len(calls.wall) for calls in measured} == dict.fromkeys([*requests.LIFECYCLE, "GET Workload"], 6)
    sent = collections.Counter(
        f"{r.method.upper()} {route.plural}{'/' + route.subresource if route.subresource else ''}"
        for r in kube_api.requests_since(first)
        if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS) and (route := parse_resource_path(r.url.path)))
    assert sent == {"PATCH workloads": 6, "PATCH workloads/status": 6, "POST events": 6, "POST pods": 6,
                    "PATCH pods": 6, "GET workloads": 6}
    assert "A batch lifecycle's 13 requests" in requests.table(measured)
    assert all(calls.server is None for calls in measured)  # the emulator serves in this process: not measured
    async with aiohttp.ClientSession(str(kube_api.url)) as session:
        async with session.get("/api/v1/namespaces") as response:
            assert not [n for n in (await response.json())["items"] if n["metadata"]["name"].startswith("requests-")]


# What a kube-apiserver accepts as a request body (k8s.io/apiserver negotiation): no Content-Type means JSON;
# otherwise one media type it serves, parameters allowed. PATCH takes only the patch types; anything else is 415.
BODY_TYPES = {"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "application/cbor"}
PATCH_TYPES = {"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/apply-patch+yaml"}


async def test_the_proxy_forwards_the_operators_writes_as_a_kube_apiserver_accepts_them(tmp_path):
    """The official client sends its POSTs and DELETEs without a Content-Type (a kube-apiserver reads that as
    JSON); the proxy must neither add one (aiohttp would say application/octet-stream: 415) nor change the body.
    The operator's own client says JSON; both pass."""
    received: list[tuple[str, str, str, bytes]] = []

    async def strict(request: aiohttp.web.Request) -> aiohttp.web.Response:
        body, content_types = await request.read(), request.headers.getall("Content-Type", [])
        received.append((request.method, request.path, ",".join(content_types), body))
        if body:
            allowed = PATCH_TYPES if request.method == "PATCH" else BODY_TYPES
            if len(content_types) > 1 or (content_types and content_types[0].split(";")[0].strip() not in allowed):
                return aiohttp.web.json_response({"kind": "Status", "code": 415, "reason": "UnsupportedMediaType",
                                                  "message": f"the body of the request was in an unknown format: "
                                                             f"{content_types}"}, status=415)
            json.loads(body)
        return aiohttp.web.json_response(json.loads(body) if request.method == "POST" else {"kind": "Status"},
                                         status=201 if request.method == "POST" else 200)

    app = aiohttp.web.Application()
    app.router.add_route("*", "/{path:.*}", strict)
    async with stand_in_api(app, tmp_path) as upstream, CountingProxy(upstream).serving() as url:
        api_client = kubernetes.client.ApiClient(client_configuration(write_kubeconfig(tmp_path / "proxy", url)))
        kube = Kube(api_client)
        view = WorkloadView.from_body({"metadata": {"name": "w", "namespace": "ml", "uid": "u1",
                                                    "resourceVersion": "1"}, "spec": {"image": "busybox"}})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w-1", "namespace": "ml"},
               "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
        await kube.create_pod(pod, "u1")
        await kube.post_event(view, reason="Queued", message="(new) → queued", warning=False,
                              now=datetime.datetime.now(datetime.UTC))
        await kube.delete_pod("ml", "w-1", "p1")
        await kube.add_finalizer(view)
        await kube.close()  # the Event is posted in the background: it is out once this returns
        official = kubernetes.client.CoreV1Api(api_client)
        await asyncio.to_thread(official.create_namespaced_pod, "other", pod, _preload_content=False)
        await asyncio.to_thread(official.delete_namespaced_pod, "w-1", "other", body={"preconditions": {"uid": "p1"}},
                                _preload_content=False)

    sent = {(method, path): (content_type, json.loads(body)) for method, path, content_type, body in received}
    assert len(sent) == len(received) == 6
    assert sent[("POST", "/api/v1/namespaces/ml/pods")] == ("application/json", pod)
    assert sent[("POST", "/api/v1/namespaces/ml/events")][1]["reason"] == "Queued"
    assert sent[("DELETE", "/api/v1/namespaces/ml/pods/w-1")] == ("application/json", {"preconditions": {"uid": "p1"}})
    assert sent[("PATCH", f"/apis/{GROUP}/{VERSION}/namespaces/ml/{PLURAL}/w")][0] == "application/json-patch+json"
    # The official client's, with no Content-Type: none added on the way.
    assert sent[("POST", "/api/v1/namespaces/other/pods")] == ("", pod)
    assert sent[("DELETE", "/api/v1/namespaces/other/pods/w-1")] == ("", {"preconditions": {"uid": "p1"}})
