"""A zygote for the crash and failover tests: imports the operator once, then forks a fresh operator process per line read.

Each child is a separate process running `workload-operator run ARGS...`, killed by the test with SIGKILL
like any other; forking spares the ~0.5 s of imports that 200 kill points would otherwise pay each time.
Reads: one line per operator to start (its arguments, space-separated); writes: the child's pid.
Used through tests/processes.py.
"""

import os
import signal
import sys

from workload_operator import cli, handlers  # noqa: F401  (everything imported before any fork)

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped at once: a killed one leaves no zombie
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:  # the child: a fresh operator with no threads and no event loop inherited
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sys.stdin.close()
        os._exit(cli.main(line.split()))
    print(pid, flush=True)
