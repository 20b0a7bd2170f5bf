"""`workload-operator dev`, the README's main command, as a user runs it: a subprocess on the emulated API."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).parents[2]
COMMAND = [sys.executable, "-m", "workload_operator", "dev"]
FINAL = {"train-resnet": "completed", "bad-lr": "failed", "sweep": "cancelled", "notebook": "completed", "llm": "completed"}


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBEBUILDER_ASSETS", "TEST_ASSET_", "KUBECONFIG"))}
    return env


def rows(output: str) -> dict[str, list[str]]:
    """Each workload's states, in the order the live table showed them."""
    states: dict[str, list[str]] = {}
    for line in output.splitlines():
        if match := re.match(r"^\+[\d.]+s\s+(\S+)\s+(\S+)", line):
            states.setdefault(match[1], []).append(match[2])
    return states


def test_the_examples_are_what_dev_expects():
    names = {doc["metadata"]["name"] for path in (ROOT / "examples").glob("*.yaml") for doc in yaml.safe_load_all(path.read_text())}
    assert names == set(FINAL)


def test_dev_drives_every_example_to_its_final_state_and_stops_cleanly(tmp_path):
    started = time.monotonic()
    result = subprocess.run([*COMMAND, "--until-settled", "--timeout", "60"], cwd=ROOT, env=environment(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "using the emulated API" in result.stdout
    states = rows(result.stdout)
    assert {name: seen[-1] for name, seen in states.items()} == FINAL
    assert states["notebook"][-3:] == ["serving", "stopping", "completed"]
    assert states["train-resnet"][-3:] == ["running", "collecting", "completed"]
    assert result.stdout.rstrip().endswith("stopped; nothing left running")
    kubeconfig = re.search(r"kubeconfig: (\S+)", result.stdout)[1]
    assert not pathlib.Path(kubeconfig).parent.exists(), "the temporary folder is removed"
    assert time.monotonic() - started < 60


def test_dev_stops_cleanly_on_ctrl_c():
    process = subprocess.Popen(COMMAND, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the table shows a workload running
        line = process.stdout.readline()
        seen.append(line)
        if " running " in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    output = "".join(seen) + out
    assert process.returncode == 0, output + err
    assert "stopping (interrupted)" in output and output.rstrip().endswith("stopped; nothing left running")
