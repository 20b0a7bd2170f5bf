"""`workload-operator dev`, the README's main command, as a user runs it: a subprocess on the emulated API."""

import asyncio
import json
import logging
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from workload_operator.dev import STOP_SIGNALS

ROOT = pathlib.Path(__file__).parents[2]
COMMAND = [sys.executable, "-m", "workload_operator", "dev"]
STOP_DEADLINE = 30  # seconds from the stop to the exit: the operator's own shutdown takes a few
FINAL = {"train-resnet": "completed", "bad-lr": "failed", "sweep": "cancelled", "notebook": "completed", "llm": "completed",
         "train-ddp": "completed", "llm-405b": "completed"}


def environment(**more: str) -> dict[str, str]:
    """No control plane's binaries (none named, none in the build cache): dev uses the emulated API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBEBUILDER_ASSETS", "TEST_ASSET_", "KUBECONFIG"))}
    return {**env, "WORKLOAD_CONTROLPLANE_CACHE": "/nonexistent/workload-controlplane", **more}


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
    assert f"export KUBECONFIG={kubeconfig}; kubectl get mlwl -w; kubectl describe mlwl " in result.stdout
    assert not pathlib.Path(kubeconfig).parent.exists(), "the temporary folder is removed"
    assert time.monotonic() - started < 60


def start(tmp_path: pathlib.Path, **options) -> tuple[subprocess.Popen, pathlib.Path]:
    """`workload-operator dev` as a subprocess; its stderr goes to a file (returned)."""
    errors = tmp_path / "stderr"
    with errors.open("w") as stderr:
        process = subprocess.Popen(COMMAND, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, **options)
    return process, errors


def read_until(stream, seen: list[str], wanted: str, timeout: float = 30) -> str:
    """Lines of the live output, until one contains ``wanted`` (returned); a stream that ends first fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        assert line, f"the output ended before {wanted!r}: {''.join(seen)}"
        seen.append(line)
        if wanted in line:
            return line
    raise AssertionError(f"no {wanted!r} within {timeout}s: {''.join(seen)}")


def announced_folder(seen: list[str]) -> pathlib.Path:
    folder = pathlib.Path(re.search(r"kubeconfig: (\S+)", "".join(seen))[1]).parent
    assert folder.is_dir() and folder.name.startswith("workload-dev-")
    return folder


def assert_stopped_cleanly(process: subprocess.Popen, folder: pathlib.Path, errors: pathlib.Path) -> None:
    """It exits promptly, with 0, its temporary folder removed and no traceback or broken-pipe noise."""
    assert process.wait(timeout=STOP_DEADLINE) == 0, errors.read_text()
    assert not folder.exists(), "the temporary folder is removed"
    assert not re.search(r"Traceback|Exception ignored|BrokenPipe", errors.read_text()), errors.read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda sig: sig.name)
def test_dev_cleans_up_on_each_stop_signal(sig, tmp_path):
    process, errors = start(tmp_path)
    seen: list[str] = []
    read_until(process.stdout, seen, " running ")  # the table shows a workload running
    folder = announced_folder(seen)
    process.send_signal(sig)
    seen.append(process.stdout.read())
    assert_stopped_cleanly(process, folder, errors)
    output = "".join(seen)
    assert f"stopping ({STOP_SIGNALS[sig]})" in output and output.rstrip().endswith("stopped; nothing left running")


def test_dev_cleans_up_when_its_output_pipe_is_closed(tmp_path):
    """`dev | head`: the reader goes away while the table is quiet; dev notices without writing."""
    process, errors = start(tmp_path)
    seen: list[str] = []
    read_until(process.stdout, seen, "TIME ")  # the table has started
    folder = announced_folder(seen)
    process.stdout.close()
    assert_stopped_cleanly(process, folder, errors)
    lines = errors.read_text().splitlines()  # under load kopf may warn of streams it had no time to finish
    assert "stopping (output closed) ..." in lines and lines[-1] == "stopped; nothing left running"


@pytest.mark.skipif(shutil.which("tee") is None, reason="no tee on this machine")
def test_dev_piped_to_tee_cleans_up_on_ctrl_c(tmp_path):
    """`dev | tee dev.log`, then Ctrl-C: the terminal signals both; tee dies at once and breaks the pipe."""
    process, errors = start(tmp_path, process_group=0)  # a foreground job of its own, joined by tee
    tee = subprocess.Popen(["tee", str(tmp_path / "dev.log")], stdin=process.stdout, stdout=subprocess.PIPE,
                           text=True, process_group=process.pid)
    process.stdout.close()  # tee holds the pipe's read end now
    seen: list[str] = []
    read_until(tee.stdout, seen, " running ")
    folder = announced_folder(seen)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground process group
    rest, _ = tee.communicate(timeout=STOP_DEADLINE)
    assert_stopped_cleanly(process, folder, errors)
    # Its last words go where they can still be read: to stderr once tee has gone, or through tee while it lives
    # (on a loaded machine tee may take longer to die than dev to stop).
    shown = errors.read_text().splitlines() or ("".join(seen) + rest).splitlines()
    assert shown[-1] == "stopped; nothing left running", shown


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on this machine")
def test_the_kubectl_commands_dev_suggests_work(tmp_path):
    process, errors = start(tmp_path)
    seen: list[str] = []
    hint = read_until(process.stdout, seen, "kubectl")
    folder = announced_folder(seen)
    export, watch_command, describe, wait = (command.strip() for command in hint.split(":", 1)[1].split(";"))
    assert export == f"export KUBECONFIG={folder / 'kubeconfig'}"
    env = {**environment(), "KUBECONFIG": export.split("=", 1)[1], "KUBECACHEDIR": str(tmp_path / "cache")}
    try:
        waited = subprocess.run([*shlex.split(wait), "--timeout=60s"], env=env, capture_output=True, text=True,
                                timeout=90)
        assert waited.returncode == 0 and "condition met" in waited.stdout, waited.stderr
        described = subprocess.run(shlex.split(describe), env=env, capture_output=True, text=True, timeout=30)
        events = described.stdout.split("\nEvents:")[1]
        assert "queued" in events and "workload-operator" in events, described.stdout + described.stderr
        watching = subprocess.Popen(shlex.split(watch_command), env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        try:
            assert watching.stdout.readline().split()[:3] == ["NAME", "STATE", "TYPE"]
            assert watching.stdout.readline().split()[0] in FINAL
        finally:
            watching.terminate()
            watching.communicate(timeout=10)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=STOP_DEADLINE)
    assert_stopped_cleanly(process, folder, errors)


async def test_kopf_streams_closed_as_the_loop_shuts_down_are_not_reported_as_errors(caplog):
    """kopf's watch-stream generators that asyncio closes at shutdown may fail to close; dev says so at debug
    level only. Any other generator's failure still reaches the loop's handler as an error."""
    from kopf._cogs.clients.watching import infinite_watch

    from workload_operator.dev import _quiet_kopf_streams_closed_late

    async def other_stream():
        yield None

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    kopf_stream, other = infinite_watch(settings=None, resource=None, namespace=None), other_stream()
    try:
        _quiet_kopf_streams_closed_late(loop)
        for stream in (kopf_stream, other):
            loop.call_exception_handler({"message": f"an error occurred during closing of {stream!r}",
                                         "exception": RuntimeError("generator didn't stop after athrow()"),
                                         "asyncgen": stream})
    finally:
        loop.set_exception_handler(previous)
        await other.aclose()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "other_stream" in errors[0]


def test_dev_serves_the_dashboard_with_the_examples(tmp_path):
    process, errors = start(tmp_path)
    seen: list[str] = []
    url = read_until(process.stdout, seen, "dashboard: ").split("dashboard: ")[1].strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
    read_until(process.stdout, seen, " running ")  # the examples are applied
    with urllib.request.urlopen(url + "api/list", timeout=10) as stream:  # noqa: S310 (loopback)
        assert stream.readline() == b"event: snapshot\n"
        snapshot = json.loads(stream.readline().removeprefix(b"data: "))
    assert {row["name"] for row in snapshot["workloads"]} == set(FINAL)
    with urllib.request.urlopen(url, timeout=10) as page:  # noqa: S310
        assert b'src="/static/app.js"' in page.read()
    folder = announced_folder(seen)
    process.send_signal(signal.SIGINT)
    seen.append(process.stdout.read())
    assert_stopped_cleanly(process, folder, errors)
