"""The ``workload-operator`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys
from collections.abc import Sequence

from workload_operator import crd
from workload_operator.lifecycle import mermaid_diagram


def run(namespaces: list[str], *, verbose: bool, liveness: str | None, settings: dict[str, str]) -> int:
    import kopf

    from workload_operator import handlers  # noqa: F401  (registers the handlers with kopf)
    from workload_operator.kube import Kube, NotReady

    try:
        asyncio.run(Kube.from_environment().check_ready())
    except NotReady as exc:
        print(f"workload-operator: {exc}", file=sys.stderr)
        return 1
    os.environ.update(settings)  # the handlers read their settings from the environment, as under `kopf run`
    kopf.configure(verbose=verbose)
    kopf.run(standalone=True, clusterwide=not namespaces, namespaces=namespaces, liveness_endpoint=liveness)
    return 0


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
    dev_parser = commands.add_parser("dev", help="run a local control plane, the operator, a simulated kubelet and the examples")
    dev_parser.add_argument("--examples", default="examples", metavar="DIR", help="Workload manifests to apply (default %(default)s)")
    dev_parser.add_argument("--kubeconfig", metavar="PATH", help="use this cluster instead (the simulated kubelet is off)")
    dev_parser.add_argument("--until-settled", action="store_true", help="stop when every example has finished")
    dev_parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after this long (exit code 1)")
    dev_parser.add_argument("-v", "--verbose", action="store_true", help="show the operator's logs too")
    commands.add_parser("crd", help="print the Workload CRD (kubectl apply -f -)")
    commands.add_parser("diagram", help="print the lifecycle as a Mermaid state diagram")
    args = parser.parse_args(argv)

    if args.command == "crd":
        sys.stdout.write(crd.render())
    elif args.command == "diagram":
        print(mermaid_diagram())
    elif args.command == "run":
        from workload_operator.handlers import METRICS_PORT_ENV, POLICY_ENV

        options = {"max_active": args.max_active, "max_active_per_namespace": args.max_active_per_namespace,
                   "backoff_base": args.backoff, "backoff_cap": args.backoff_cap}
        settings = {POLICY_ENV[field]: str(value) for field, value in options.items() if value is not None}
        if args.metrics_port:
            settings[METRICS_PORT_ENV] = str(args.metrics_port)
        return run(args.namespace, verbose=args.verbose, liveness=None if args.liveness == "off" else args.liveness,
                   settings=settings)
    elif args.command == "dev":
        from workload_operator.dev import dev

        return asyncio.run(dev(pathlib.Path(args.examples), kubeconfig=args.kubeconfig,
                               until_settled=args.until_settled, timeout=args.timeout, verbose=args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())
