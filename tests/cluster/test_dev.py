"""`workload-operator dev` on the real control plane, as the README's first command runs it once the test command
has built one: every example reaches the same final state as on the emulated API, with the API server's schema,
CEL rules, defaults and admission in force."""

import os
import re
import subprocess

import pytest

from tests.integration.test_dev import COMMAND, FINAL, ROOT, rows
from workload_operator.devcluster import control_plane


@pytest.mark.skipif(control_plane.binaries() is None, reason="needs the control plane's binaries")
def test_dev_on_the_real_control_plane_drives_every_example_to_its_final_state():
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    result = subprocess.run([*COMMAND, "--until-settled", "--timeout", "120"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^starting etcd, kube-apiserver and kube-controller-manager from ", result.stdout, flags=re.M), \
        result.stdout
    assert re.search(r"^dashboard: http://127\.0\.0\.1:\d+/$", result.stdout, flags=re.M), result.stdout
    states = rows(result.stdout)
    assert {name: seen[-1] for name, seen in states.items()} == FINAL, result.stdout
    assert result.stdout.rstrip().endswith("stopped; nothing left running")
