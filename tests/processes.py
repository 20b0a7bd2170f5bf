"""Operator processes for the crash and failover tests: `workload-operator run` as real processes, forked from a
zygote that has imported the operator once (see zygote.py), each signalled by its pid like any other process."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import IO


class Zygote:
    """Starts operator processes (`workload-operator ARGS...`) and signals them; leaves none behind when closed."""

    def __init__(self, kubeconfig: pathlib.Path, log: IO[bytes]) -> None:
        environment = {k: v for k, v in os.environ.items() if k not in ("POD_NAME", "POD_NAMESPACE")}
        self.process = subprocess.Popen(
            [sys.executable, str(pathlib.Path(__file__).with_name("zygote.py"))],
            env={**environment, "KUBECONFIG": str(kubeconfig)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True,
        )
        self.running: set[int] = set()  # started and not yet seen gone: the only pids close() may signal

    def start(self, args: str) -> int:
        """Start one operator process; returns its pid."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(args + "\n")
        self.process.stdin.flush()
        pid = int(self.process.stdout.readline())
        self.running.add(pid)
        return pid

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    def send(self, pid: int, sig: int) -> None:
        os.kill(pid, sig)

    def wait_gone(self, pid: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the zygote reaps it; wait until it is really gone
            if not self.alive(pid):
                self.running.discard(pid)  # its pid may be anyone's from now on
                return
            time.sleep(0.01)
        raise AssertionError(f"operator {pid} did not end")

    def end(self, pid: int, sig: int = signal.SIGTERM) -> None:
        self.send(pid, sig)
        self.wait_gone(pid)

    def close(self) -> None:
        """Whatever happened, leave no operator and no zygote behind."""
        for pid in self.running:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
