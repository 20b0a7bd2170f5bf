"""Failover against the emulated API: two operator processes, the leader SIGKILLed and SIGTERMed (tests/failover.py).

Here every request is logged, so the test also checks that while nobody holds the Lease (a SIGKILLed leader
gone, the standby waiting for the lease to expire) no operator process reconciled: the only requests are
the election's own (and a new standby's discovery), up to the standby's taking the Lease. The seed is printed; replay with
WORKLOAD_FAILOVER_SEED=<seed>.
"""

from __future__ import annotations

import os

from tests.failover import failover, report
from tests.processes import Zygote
from workload_operator.devcluster.emulator import OPERATOR_AGENTS, parse_resource_path

SEED = int(os.environ.get("WORKLOAD_FAILOVER_SEED", "14"))


class EmulatorQuiet:
    """The emulator's request log between the leader's death and the standby's acquiring the Lease."""

    def __init__(self, kube_api) -> None:
        self.kube_api, self.since = kube_api, 0

    def begin(self) -> None:
        self.since = len(list(self.kube_api))

    def end(self) -> None:
        requests = [r for r in self.kube_api.requests_since(self.since)
                    if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENTS)]
        acquired = next((i for i, r in enumerate(requests)
                         if "/leases/" in r.url.path and r.method.upper() == "PUT"), len(requests))
        others = [f"{r.method.upper()} {r.url.path}" for r in requests[:acquired]  # discovery: a new standby's check
                  if "/leases" not in r.url.path and parse_resource_path(r.url.path) is not None]
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
