"""Benchmark 5: canary reaction, from a candidate that starts failing to traffic back on stable.

The CanaryRelease decision code (``reconcile_canary``) runs tick by tick, every TICK_SECONDS of
the handler, against the simulated world of the unit tests (tests/support/canary_world.py:
Deployments that roll out when asked, Prometheus answers made from each version's behaviour).
Time is the world's clock, so the reaction is a property of the decision logic and the
settings, not of this machine's load; the API and Prometheus round trips of a real tick come on
top. Beside it, Flagger's model for the same settings: a check every ``interval``, rollback when
``threshold`` (here failureLimit) checks have failed, so a reaction of interval x threshold.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from datetime import timedelta

from .common import Bench, Settings

__all__ = ["run"]

# (interval, failure limit): Flagger's documented example (1m, threshold 5), then tighter ones.
SETTINGS = (("1m", 5), ("30s", 3), ("10s", 1))
# Where in a check interval the candidate starts failing, as a fraction of the interval.
ONSETS = (0.0, 0.25, 0.5, 0.75)
BAD = {"error_rate": 0.2}


def _spec(interval: str, failure_limit: int):
    from tests.support.canary_world import release_spec

    return release_spec(
        interval=interval,
        analysis={
            "prometheus": {"url": "http://prometheus:9090"},
            "window": interval,
            "failureLimit": failure_limit,
            "metrics": [
                {"name": "error-rate", "builtin": "error-rate", "thresholdRange": {"max": 0.05}},
                {"name": "latency", "builtin": "latency", "thresholdRange": {"max": 0.5}},
            ],
        },
    )


def _reaction(interval: str, failure_limit: int, onset: float, tick: float) -> dict[str, float]:
    """Seconds from the candidate's failure onset to its first failed check and to traffic on stable."""
    from modelpilot.api import parse_duration
    from tests.support.canary_world import Behaviour, World

    world = World(_spec(interval, failure_limit))
    period = parse_duration(interval).total_seconds()
    cpu: list[float] = []

    def step() -> None:
        began = time.process_time()
        world.tick(seconds=tick)
        cpu.append(time.process_time() - began)

    for _ in range(2000):  # until the candidate serves traffic at the first step
        if world.status.phase == "Progressing" and world.status.step_started is not None and (world.actual_weight() or 0) > 0:
            break
        step()
    else:
        raise RuntimeError(f"the release never started progressing: {world.status.phase}")
    started = world.status.step_started
    while world.now < started + timedelta(seconds=onset * period):
        step()
    world.candidate_behaviour = Behaviour(**BAD)
    bad_at, first_fail = world.now, None
    for _ in range(100_000):
        at = world.now
        step()
        if first_fail is None and world.status.last_check == "Fail":
            first_fail = at
        if world.status.phase == "RolledBack" and not world.actual_weight():
            return {
                "to_first_fail": (first_fail - bad_at).total_seconds() if first_fail else float("nan"),
                "to_stable": (at - bad_at).total_seconds(),
                "tick_cpu": statistics.median(cpu),
            }
    raise RuntimeError(f"no rollback: phase {world.status.phase}, counters {world.status.counters}")


def run(settings: Settings, *, log=print) -> Bench:
    bench = Bench(
        "canary_reaction",
        "5. Canary reaction: failing candidate to traffic back on stable (decision code, simulated clock)",
        header=(
            "interval x failure limit",
            "first failed check after onset",
            "traffic on stable after onset",
            "Flagger model (interval x threshold)",
            "modelpilot / Flagger",
        ),
    )
    if importlib.util.find_spec("modelpilot.reconcile.canary") is None:
        bench.skipped = "CanaryRelease not implemented (no modelpilot.reconcile.canary)"
        bench.result = ("canary_reaction", "skipped")
        return bench
    from modelpilot.api import parse_duration
    from modelpilot.handlers.canary import TICK_SECONDS

    headline = None
    for interval, limit in SETTINGS:
        outcomes = [_reaction(interval, limit, onset, TICK_SECONDS) for onset in ONSETS]
        flagger = parse_duration(interval).total_seconds() * limit
        to_stable = [o["to_stable"] for o in outcomes]
        to_fail = [o["to_first_fail"] for o in outcomes]
        median = statistics.median(to_stable)
        bench.rows.append(
            (
                f"{interval} x {limit}",
                f"{statistics.median(to_fail):.0f} s [{min(to_fail):.0f}-{max(to_fail):.0f}]",
                f"{median:.0f} s [{min(to_stable):.0f}-{max(to_stable):.0f}]",
                f"{flagger:.0f} s",
                f"{median / flagger:.2f}",
            )
        )
        bench.figures[f"{interval}x{limit}"] = {"outcomes": outcomes, "flagger_seconds": flagger}
        headline = headline or median / flagger
        log(f"  {interval} x {limit}: traffic on stable after {median:.0f}s (Flagger's model {flagger:.0f}s)")
    cpu = statistics.median(o["tick_cpu"] for key in bench.figures for o in bench.figures[key]["outcomes"])
    bench.notes.append(
        f"onsets at {', '.join(f'{o:.0%}' for o in ONSETS)} of an interval into the first step (median [min-max] over "
        f"them); candidate error rate {BAD['error_rate']:.0%} against a 5% threshold; handler tick {TICK_SECONDS:g}s; "
        f"the analysis window equals the interval"
    )
    bench.notes.append(
        f"decision CPU per tick (observation_needs + reconcile_canary): {cpu * 1e3:.2f} ms; a real tick adds its API "
        f"and Prometheus round trips"
    )
    bench.notes.append(
        "modelpilot follows the same model (a check every interval, rollback at the failure limit, traffic moved "
        "at the next tick): its reaction is the wait for the next check plus (limit - 1) intervals plus one tick, "
        "so it stays under interval x threshold, which is that model's bound; there is no faster mechanism here"
    )
    bench.notes.append(
        "the simulated Prometheus answers follow the candidate's behaviour at once; a real window containing the "
        "onset dilutes the first failing check, in Flagger as here"
    )
    bench.figures["tick_cpu_seconds"] = cpu
    bench.result = ("canary_reaction_over_flagger_model_1m_x5", f"{headline:.2f}")
    return bench
