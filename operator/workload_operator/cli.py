"""The ``workload-operator`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from workload_operator import crd
from workload_operator.lifecycle import mermaid_diagram


def _not_yet(issue: str) -> int:
    print(f"workload-operator: not yet: this subcommand arrives with the issue {issue!r}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workload-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the operator against the current kubeconfig context")
    commands.add_parser("dev", help="run a local control plane, the operator and the examples")
    commands.add_parser("crd", help="print the Workload CRD (kubectl apply -f -)")
    commands.add_parser("diagram", help="print the lifecycle as a Mermaid state diagram")
    args = parser.parse_args(argv)

    if args.command == "crd":
        sys.stdout.write(crd.render())
    elif args.command == "diagram":
        print(mermaid_diagram())
    elif args.command == "run":
        return _not_yet("The operator: reconcile pods into lifecycle states")
    elif args.command == "dev":
        return _not_yet("Ship it: local control plane as the default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
