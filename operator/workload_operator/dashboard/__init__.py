"""`workload-operator dashboard`: a read-only web page of every Workload's lifecycle, live.

``board`` keeps what the pages show (pure), ``server`` watches the API and pushes changes to the pages, and
``static/`` is the page itself (no build step, nothing loaded from elsewhere).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

DASHBOARD_PORT = 8000


async def run(namespaces: Sequence[str], *, address: str, port: int) -> int:
    """Serve until SIGINT or SIGTERM (0), or until the API server refuses a watch (1, with its words)."""
    from workload_operator.dashboard.server import AGENT, serving
    from workload_operator.kube import Kube, NotReady

    try:
        kube = Kube.from_environment(AGENT)
        await kube.check_ready()
    except NotReady as exc:
        print(f"workload-operator dashboard: {exc}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    try:
        async with serving(kube, namespaces, address=address, port=port) as (dashboard, url):
            scope = ", ".join(namespaces) if namespaces else "every namespace"
            print(f"dashboard: {url} (Workloads of {scope}; Ctrl-C to stop)", flush=True)
            assert dashboard.watching is not None
            await asyncio.wait([stop, dashboard.watching], return_when=asyncio.FIRST_COMPLETED)
            if dashboard.watching.done() and dashboard.watching.exception() is not None:
                print(f"workload-operator dashboard: {dashboard.watching.exception()}", file=sys.stderr)
                return 1
    except OSError as exc:  # the address is taken, or not this machine's
        print(f"workload-operator dashboard: cannot serve on {address}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0
