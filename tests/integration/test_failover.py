"""Failover against the emulated API: two operator processes, the leader SIGKILLed and SIGTERMed (tests/failover.py).

Here every request is logged, so the test also checks that while nobody holds the Lease (a SIGKILLed leader
gone, the standby waiting for the lease to expire) no operator process reconciled: the only requests are
the election's own (and a new standby's discovery), up to the standby's taking the Lease. The seed is printed; replay with
WORKLOAD_FAILOVER_SEED=<seed>.
"""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.error
import urllib.request

from tests.failover import LEASE, Replicas, failover, holder, report
from tests.harness import wait_for
from tests.integration.test_metrics import exposition, free_port, scrape
from tests.processes import Zygote
from workload_operator.devcluster.emulator import OPERATOR_AGENTS, parse_resource_path

SEED = int(os.environ.get("WORKLOAD_FAILOVER_SEED", "14"))


class EmulatorQuiet:
    """The emulator's request log between the leader's death and the standby's acquiring the Lease."""

    def __init__(self, kube_api) -> None:
        self.kube_api, self.since = kube_api, 0

    def begin(self, leader: str) -> None:
        self.since = len(list(self.kube_api))
        # What the dead leader sent just before SIGKILL may still be read after this point: its requests name it
        # in their User-Agent; kopf's (its watches) came on the connections that carried reconciling before.
        self.dead = f"({leader})"
        self.dead_peers = {self.kube_api.peer(r) for r in self.kube_api.requests_since(0)
                           if "/leases" not in r.url.path and parse_resource_path(r.url.path) is not None
                           and r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS)}

    def end(self) -> None:
        requests = [r for r in self.kube_api.requests_since(self.since)
                    if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS)]
        acquired = next((i for i, r in enumerate(requests)
                         if "/leases/" in r.url.path and r.method.upper() == "PUT"), len(requests))
        # Only a leader runs kopf: a read of kopf's before anyone took the Lease is the dead leader's, sent just
        # before SIGKILL on a connection it had just opened, and read here just after.
        others = [f"{r.method.upper()} {r.url.path}" for r in requests[:acquired]  # discovery: a new standby's check
                  if "/leases" not in r.url.path and parse_resource_path(r.url.path) is not None
                  and not r.headers.get("User-Agent", "").endswith(self.dead)
                  and self.kube_api.peer(r) not in self.dead_peers
                  and not (r.headers.get("User-Agent", "").startswith("kopf/") and r.method.upper() == "GET")]
        assert not others, f"requests while nobody led: {others}"
        assert acquired < len(requests), "no standby wrote the Lease"


async def test_two_replicas_hand_over_on_sigkill_and_sigterm(cluster, kube_api, kubeconfig, kubelet, tmp_path,
                                                              capsys):
    with capsys.disabled():
        print(f"\nfailover test: seed={SEED} (replay: WORKLOAD_FAILOVER_SEED={SEED})")
    with open(tmp_path / "operators.log", "wb") as log:
        zygote = Zygote(kubeconfig, log)
        try:
            takeovers = await failover(cluster, zygote, SEED, quiet=EmulatorQuiet(kube_api))
        finally:
            zygote.close()
    assert [t.signal for t in takeovers].count("SIGTERM") == 1 and len(takeovers) >= 5
    with capsys.disabled():
        print(report(SEED, takeovers))


def _get(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


async def test_the_leader_and_the_standby_say_which_they_are(cluster, kubeconfig, tmp_path):
    """Both serve metrics from the start (workload_operator_leader 1 and 0) and answer the liveness probe:
    the standby from leader.standby_health, the leader from kopf. Only the leader exports workload gauges."""
    ports = [(free_port(), free_port()) for _ in range(2)]
    with open(tmp_path / "operators.log", "wb") as log:
        zygote = Zygote(kubeconfig, log)
        try:
            pids = []
            for metrics_port, health_port in ports:
                args = Replicas(zygote, cluster.namespace).args.replace("--liveness off --metrics-port 0", (
                    f"--liveness http://127.0.0.1:{health_port}/healthz --metrics-port {metrics_port}"))
                pids.append(zygote.start(args))
                if len(pids) == 1:
                    await wait_for(lambda: holder(cluster), "the first to lead")

            identity = Replicas.identity

            async def gauges() -> list[dict] | None:
                found = []
                for metrics_port, _ in ports:
                    samples = await asyncio.to_thread(lambda: _samples(metrics_port))
                    if samples is None:
                        return None
                    found.append(samples)
                # The first says 1 once it has closed its standby's health endpoint (up to half a second after
                # the Lease is its own): by then the second, which starts faster now, may be serving already.
                # Its workload gauges come once kopf has started behind the Lease: a moment later on a loaded machine.
                leading = found[0].get(("workload_operator_leader", (("identity", identity(pids[0])),)))
                return found if leading == 1 and ("workload_operator_queue_length", ()) in found[0] else None

            leader, standby = await wait_for(gauges, "both replicas' metrics, the leader's saying so with its gauges")
            assert leader[("workload_operator_leader", (("identity", identity(pids[0])),))] == 1
            assert standby[("workload_operator_leader", (("identity", identity(pids[1])),))] == 0
            assert not [key for key in standby if key[0].startswith(("workload_operator_workloads",
                                                                     "workload_operator_queue"))]
            for _, health_port in ports:
                url = f"http://127.0.0.1:{health_port}/healthz"
                assert await wait_for(lambda: asyncio.to_thread(lambda: _get(url) == 200), f"{url} to answer")
            assert await asyncio.to_thread(_get, f"http://127.0.0.1:{ports[1][1]}/other") == 404
            assert await holder(cluster) == identity(pids[0]), f"the Lease {LEASE}"
            for pid in pids:
                zygote.end(pid, signal.SIGTERM)
        finally:
            zygote.close()


def _samples(port: int):
    try:
        return scrape(port) if exposition(port) else None
    except OSError:
        return None
