"""Failover against a real kube-apiserver: the scenario of tests/failover.py (two operator processes, the leader
SIGKILLed and SIGTERMed while 50 workloads move) on a real server's Leases and resourceVersions.

The real server's request log is not visible here, so the check that nobody reconciles while nobody leads is
the integration tier's; the histories, final states and single pods are checked on both tiers.
"""

from __future__ import annotations

import os

from tests.failover import failover, report
from tests.processes import Zygote

SEED = int(os.environ.get("WORKLOAD_FAILOVER_SEED", "14"))


async def test_two_replicas_hand_over_on_sigkill_and_sigterm(cluster, kubeconfig, kubelet, tmp_path, capsys):
    with open(tmp_path / "operators.log", "wb") as log:
        zygote = Zygote(kubeconfig, log)
        try:
            takeovers = await failover(cluster, zygote, SEED)
        finally:
            zygote.close()
    assert [t.signal for t in takeovers].count("SIGTERM") == 1 and len(takeovers) >= 5
    with capsys.disabled():
        print(f"\n{report(SEED, takeovers)}")
