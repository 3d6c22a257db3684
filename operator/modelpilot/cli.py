"""The `modelpilot` command: run the operator, write the CRDs, and one-shot tools."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


def _cmd_crds(args: argparse.Namespace) -> int:
    from modelpilot.api import render_crds

    rendered = render_crds()
    if args.check:
        stale = [
            name
            for name, text in rendered.items()
            if not (args.output / name).exists() or (args.output / name).read_text() != text
        ]
        if stale:
            print(f"out of date in {args.output}: {', '.join(stale)}; run `modelpilot crds`", file=sys.stderr)
            return 1
        print(f"{len(rendered)} CRDs in {args.output} are up to date")
        return 0
    if str(args.output) == "-":
        sys.stdout.write("---\n".join(rendered.values()))
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (args.output / name).write_text(text)
        print(f"wrote {args.output / name}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from modelpilot.handlers import run_operator

    return run_operator(
        namespaces=args.namespace,
        clusterwide=args.all_namespaces,
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        verbose=args.verbose,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelpilot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    run.add_argument("--metrics-port", type=int, default=9808, help="port of /metrics (0 disables)")
    run.add_argument("--liveness-port", type=int, default=8080, help="port of /healthz (0 disables)")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_cmd_run)

    crds = commands.add_parser("crds", help="write the CustomResourceDefinitions generated from the API models")
    crds.add_argument("-o", "--output", type=Path, default=Path("crds"), help="directory, or - for stdout")
    crds.add_argument("--check", action="store_true", help="fail if the files in the directory are out of date")
    crds.set_defaults(func=_cmd_crds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
