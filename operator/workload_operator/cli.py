"""The ``workload-operator`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Sequence

from workload_operator import crd
from workload_operator.dashboard import DASHBOARD_PORT
from workload_operator.leader import LeaseSettings
from workload_operator.lifecycle import mermaid_diagram

KOPF_OBJECTS_LOGGER = "kopf.objects"  # kopf's messages about each object
LEASE_NAMESPACE = "workload-operator"  # deploy/'s namespace; in a pod, its own (POD_NAMESPACE)


def run(namespaces: list[str], *, verbose: bool, liveness: str | None, settings: dict[str, str], metrics_port: int,
        lease: LeaseSettings | None) -> int:
    """Check the API, then reconcile: at once, or with ``lease`` once this replica leads (see leader.py)."""
    import kopf

    from workload_operator import handlers  # noqa: F401  (registers the handlers with kopf)
    from workload_operator import leader, metrics
    from workload_operator.kube import Kube, NotReady, replica_identity

    try:
        kube = Kube.from_environment()
        asyncio.run(kube.check_ready())
    except NotReady as exc:
        print(f"workload-operator: {exc}", file=sys.stderr)
        return 1
    os.environ.update(settings)  # the handlers read their settings from the environment, as under `kopf run`
    kopf.configure(verbose=verbose)
    # kopf logs "Handler 'on_pod_event' succeeded." for every watch event it hands to a handler: a line per pod or
    # Workload change, which buries the transitions' lines, and costs CPU. Its warnings and errors stay.
    logging.getLogger(KOPF_OBJECTS_LOGGER).setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger(leader.LIBRARY_LOGGER).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if metrics_port:  # served from the start: a standby says so too
        try:
            metrics.serve(metrics_port)
        except OSError as exc:
            print(f"workload-operator: cannot serve metrics on port {metrics_port}: {exc}", file=sys.stderr)
            return 1
    identity = lease.identity if lease is not None else replica_identity()
    elector, stopping = None, threading.Event()
    if lease is not None:
        metrics.LEADER.labels(identity).set(0)
        elector = leader.Elector(kube.api_client, lease, on_lost=_exit_on_lost)
        for signum in (signal.SIGTERM, signal.SIGINT):  # kopf's own handlers replace these once it runs
            signal.signal(signum, lambda *_: stopping.set())
        with leader.standby_health(liveness):
            elector.start()
            while not (elector.leading.wait(0.1) or stopping.is_set()):
                pass
        if stopping.is_set():  # SIGTERM while standing by (a SIGTERM from here until kopf's handlers replace
            elector.release()  # these ones is missed: the kubelet's SIGKILL follows, and the Lease expires)
            return 0
    metrics.LEADER.labels(identity).set(1)
    try:
        # No stop_flag: kopf waits for a threading.Event in an executor thread, which would hold its shutdown.
        kopf.run(standalone=True, clusterwide=not namespaces, namespaces=namespaces, liveness_endpoint=liveness)
    finally:
        if elector is not None:
            elector.release()  # after kopf has stopped: the standby takes over at its next retry
    return 0


def _exit_on_lost(why: str) -> None:
    """Stop reconciling at once (controller-runtime does the same); the Deployment restarts this as a standby."""
    sys.stderr.flush()
    os._exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workload-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_parser = commands.add_parser("run", help="run the operator against the current kubeconfig context (or in-cluster)")
    run_parser.add_argument("-n", "--namespace", action="append", default=[], metavar="NAME",
                     help="serve only this namespace (repeatable); default: all namespaces")
    run_parser.add_argument("-v", "--verbose", action="store_true", help="log kopf's and the operator's debug messages")
    run_parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", metavar="URL",
                            help="serve a liveness endpoint here (default %(default)s); 'off' to disable")
    run_parser.add_argument("--metrics-port", type=int, default=9090, metavar="PORT",
                            help="serve Prometheus metrics on this port (default %(default)s; 0 to disable)")
    run_parser.add_argument("--max-active", type=int, metavar="N",
                            help="at most N workloads active at once in all namespaces served (default: no limit)")
    run_parser.add_argument("--max-active-per-namespace", type=int, metavar="N",
                            help="at most N workloads active at once in each namespace (default: no limit)")
    run_parser.add_argument("--backoff", type=float, metavar="SECONDS",
                            help="wait before the next attempt after a lost worker; doubles per attempt (default 10)")
    run_parser.add_argument("--backoff-cap", type=float, metavar="SECONDS", help="the longest backoff (default 300)")
    run_parser.add_argument("--force-delete-after", type=float, metavar="SECONDS",
                            help="delete with grace 0 a pod still terminating this long after its grace period "
                                 "(its node is gone; default 30)")
    defaults = LeaseSettings(namespace=LEASE_NAMESPACE, identity="")
    election = run_parser.add_argument_group("leader election (one replica reconciles, the others stand by)")
    election.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                          help="reconcile only while holding the Lease (default: on)")
    election.add_argument("--lease-name", default=defaults.name, metavar="NAME", help="the Lease (default %(default)s)")
    election.add_argument("--lease-namespace", metavar="NAME",
                          help=f"its namespace (default: $POD_NAMESPACE, else {LEASE_NAMESPACE})")
    election.add_argument("--lease-duration", type=int, default=defaults.lease_duration, metavar="SECONDS",
                          help="a standby takes over a Lease not renewed for this long (default %(default)s)")
    election.add_argument("--renew-deadline", type=float, default=defaults.renew_deadline, metavar="SECONDS",
                          help="the leader stops when it could not renew for this long (default %(default)s)")
    election.add_argument("--retry-period", type=float, default=defaults.retry_period, metavar="SECONDS",
                          help="how often to renew, or to try to acquire (default %(default)s)")
    dev_parser = commands.add_parser("dev", help="run a local control plane, the operator, a simulated kubelet and the examples")
    dev_parser.add_argument("--examples", default="examples", metavar="DIR", help="Workload manifests to apply (default %(default)s)")
    dev_parser.add_argument("--kubeconfig", metavar="PATH", help="use this cluster instead (the simulated kubelet is off)")
    dev_parser.add_argument("--until-settled", action="store_true", help="stop when every example has finished")
    dev_parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after this long (exit code 1)")
    dev_parser.add_argument("--dashboard-port", type=int, default=DASHBOARD_PORT, metavar="PORT",
                            help="serve the dashboard on 127.0.0.1 at this port (default %(default)s; a free one "
                                 "when it is taken, or with 0)")
    dev_parser.add_argument("-v", "--verbose", action="store_true", help="show the operator's logs too")
    board_parser = commands.add_parser("dashboard", help="serve a read-only web page of every Workload, live")
    board_parser.add_argument("-n", "--namespace", action="append", default=[], metavar="NAME",
                              help="show only this namespace (repeatable); default: every namespace it can read")
    board_parser.add_argument("--address", default="127.0.0.1", metavar="IP",
                              help="listen here (default %(default)s: only this machine, or this pod through "
                                   "kubectl port-forward)")
    board_parser.add_argument("--port", type=int, default=DASHBOARD_PORT, metavar="PORT",
                              help="listen on this port (default %(default)s)")
    commands.add_parser("crd", help="print the Workload CRD (kubectl apply -f -)")
    commands.add_parser("diagram", help="print the lifecycle as a Mermaid state diagram")
    args = parser.parse_args(argv)

    if args.command == "crd":
        sys.stdout.write(crd.render())
    elif args.command == "diagram":
        print(mermaid_diagram())
    elif args.command == "run":
        from workload_operator.handlers import POLICY_ENV

        options = {"max_active": args.max_active, "max_active_per_namespace": args.max_active_per_namespace,
                   "backoff_base": args.backoff, "backoff_cap": args.backoff_cap,
                   "force_delete_after": args.force_delete_after}
        settings = {POLICY_ENV[field]: str(value) for field, value in options.items() if value is not None}
        lease = LeaseSettings(namespace=args.lease_namespace or os.environ.get("POD_NAMESPACE") or LEASE_NAMESPACE,
                              name=args.lease_name, lease_duration=args.lease_duration,
                              renew_deadline=args.renew_deadline, retry_period=args.retry_period)
        return run(args.namespace, verbose=args.verbose, liveness=None if args.liveness == "off" else args.liveness,
                   settings=settings, metrics_port=args.metrics_port, lease=lease if args.leader_elect else None)
    elif args.command == "dashboard":
        from workload_operator import dashboard

        return asyncio.run(dashboard.run(args.namespace, address=args.address, port=args.port))
    elif args.command == "dev":
        from workload_operator.dev import dev

        return asyncio.run(dev(pathlib.Path(args.examples), kubeconfig=args.kubeconfig,
                               until_settled=args.until_settled, timeout=args.timeout, verbose=args.verbose,
                               dashboard_port=args.dashboard_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
