"""`python -m bench [--quick]`: every benchmark, its table, RESULT lines and bench/results/latest.json."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import Bench, Settings, machine
from .peerenv import PeerEnv, peer_env

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("samples", "counts", "fanout", "scale", "canary")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smaller data: 100,000 rows, 200 monitors on counts and at scale, 25 in fan-out"
    )
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--repeats", type=int, default=None, help="measured runs per contender (default 3, or 5 without --quick)")
    parser.add_argument("--profile", action="store_true", help="add cProfile summaries of modelpilot's side to latest.json")
    parser.add_argument("--no-peers", action="store_true", help="skip installing and running Evidently and Alibi Detect")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
    settings = Settings(quick=args.quick, repeats=args.repeats or (3 if args.quick else 5))

    began = time.monotonic()
    host = machine()
    print(
        f"modelpilot benchmarks ({'--quick' if args.quick else 'full'} run, {settings.repeats} measured runs "
        f"after {settings.warmup} warm-up) on {host['cpu']}, {host['nproc']} CPUs, {host['memory_gib']} GiB, "
        f"Python {host['python']}",
        flush=True,
    )

    def log(message: str) -> None:
        print(message, flush=True)

    peers: PeerEnv | str = "not requested (--no-peers)"
    if "samples" in chosen and not args.no_peers:
        try:
            peers = peer_env(log)
            log(
                f"peers: {', '.join(f'{k} {v}' for k, v in sorted(peers.versions.items()))} "
                f"(virtualenv ready in {peers.install_seconds:.0f}s)"
            )
        except (RuntimeError, OSError) as err:
            peers = f"peers unavailable: {err}"
            log(peers)

    benches: list[Bench] = []
    # The Prometheus (and control plane) of benchmarks 3 and 4, started by the first that needs it.
    shared: dict[str, Any] = {"stack": None}
    try:
        for name in chosen:
            log(f"\n=== {name} ===")
            started = time.monotonic()
            try:
                bench = _run_one(name, settings, peers, args.profile, log, shared)
            except Exception as err:  # one benchmark failing still leaves the others' figures
                traceback.print_exc()
                bench = Bench(name, name, skipped=f"failed: {type(err).__name__}: {err}")
                bench.result = (name, "failed")
            bench.seconds = time.monotonic() - started
            benches.append(bench)
            print(bench.report(), flush=True)
            print(bench.result_line(), flush=True)
    finally:
        if shared["stack"] is not None:
            shared["stack"].close()

    total = time.monotonic() - began
    RESULTS.mkdir(exist_ok=True)
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "repeats": settings.repeats,
        "warmup": settings.warmup,
        "machine": host,
        "peers": peers.versions if isinstance(peers, PeerEnv) else peers,
        "peer_install_seconds": peers.install_seconds if isinstance(peers, PeerEnv) else None,
        "total_seconds": round(total, 1),
        "benchmarks": {b.name: b.to_json() for b in benches},
    }
    (RESULTS / "latest.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nall done in {total / 60:.1f} min; figures in bench/results/latest.json")
    for bench in benches:
        print(bench.result_line())
    return 0 if all(b.result and b.result[1] != "failed" for b in benches) else 1


def _run_one(name: str, settings: Settings, peers: PeerEnv | str, profile: bool, log, shared: dict[str, Any]) -> Bench:
    if name == "samples":
        from . import samples

        return samples.run(settings, peers, profile=profile, log=log)
    if name == "counts":
        from . import counts

        return counts.run(settings, profile=profile, log=log)
    if name in ("fanout", "scale"):
        from . import stack as stack_module

        if shared["stack"] is None:
            shared["stack"] = stack_module.Stack.start(settings, log=log)
        if name == "fanout":
            from . import fanout

            return fanout.run(settings, shared["stack"], profile=profile, log=log)
        from . import scale

        return scale.run(settings, shared["stack"], log=log)
    from . import canary

    return canary.run(settings, log=log)


if __name__ == "__main__":
    sys.exit(main())
