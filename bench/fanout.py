"""Benchmark 3: query fan-out against the real Prometheus, 100 monitors (25 with --quick) x 50
features.

One evaluation cycle queries what every monitor needs, all monitors concurrently, through the
operator's own ``observe_monitor``. Beside it, in the same run and against the same server, the
naive plan: the same queries except one query per feature and window for the feature
distributions. Both plans' feature answers are checked to be identical.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import datetime, timedelta

from modelpilot.api import parse_duration
from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus
from modelpilot.reconcile.monitor import MonitorObservations, decide_monitor, query_plan
from modelpilot.sources.monitor import query_monitor
from modelpilot.sources.prometheus import PrometheusClient

from .common import Bench, Settings, Timing, ratio
from .fleet import monitor_spec
from .samples import profile_top
from .stack import Stack

__all__ = ["run"]

FEATURE_QUERIES = {"featureBuckets", "featureCategories"}


# Long enough for every query of either plan to answer: the cycle's length is what is measured.
# How many answers came later than the monitors' own timeout is counted separately.
CYCLE_TIMEOUT = timedelta(minutes=10)


class _TimedClient(PrometheusClient):
    """The operator's client, noting when each answer arrives after the cycle began.

    Every query of a cycle is submitted at its start and waits in asyncio's thread pool, so an
    answer's delay is what the client's timeout measures."""

    def __init__(self, url: str, began: float, answered: list[float]):
        super().__init__(url, timeout=CYCLE_TIMEOUT)
        self._began, self._answered = began, answered

    async def instant(self, query, at):
        try:
            return await super().instant(query, at)
        finally:
            self._answered.append(time.perf_counter() - self._began)

    async def range(self, query, start, end, step):
        try:
            return await super().range(query, start, end, step)
        finally:
            self._answered.append(time.perf_counter() - self._began)


async def grouped_cycle(specs: list[ModelMonitorSpec], at: datetime, answered: list[float]) -> list[MonitorObservations]:
    """What the operator does when every monitor is due: observe_monitor for each, concurrently."""
    began = time.perf_counter()

    async def one(spec: ModelMonitorSpec) -> MonitorObservations:
        client = _TimedClient(spec.prometheus.url, began, answered)
        try:
            return await query_monitor(spec, client, namespace="bench", version="1", at=at)
        finally:
            client.close()

    return await asyncio.gather(*(one(spec) for spec in specs))


def _per_feature(promql: str, feature: str) -> str:
    # The grouped query's selector, narrowed to one feature.
    return re.sub(r"\}\[", f',feature="{feature}"}}[', promql, count=1)


async def naive_cycle(
    specs: list[ModelMonitorSpec],
    at: datetime,
    numerical: tuple[str, ...],
    categorical: tuple[str, ...],
    answered: list[float],
):
    """The same plan with one query per feature and window; returns (queries, feature answers)."""
    began = time.perf_counter()

    async def one(spec: ModelMonitorSpec):
        current, baseline, series = query_plan(spec, namespace="bench", version="1", at=at)
        client = _TimedClient(spec.prometheus.url, began, answered)
        instants = []
        for window, planned in (("current", current), ("baseline", baseline)):
            for q in planned:
                if q.name in FEATURE_QUERIES:
                    features = numerical if q.name == "featureBuckets" else categorical
                    instants += [(window, q.name, _per_feature(q.promql, f), q.at) for f in features]
                else:
                    instants.append((window, q.name, q.promql, q.at))
        try:
            calls = [client.instant(promql, when) for _, _, promql, when in instants]
            if series is not None:
                horizon, step = parse_duration(spec.degradation.horizon), parse_duration(spec.degradation.step)
                calls.append(client.range(series.promql, series.at - horizon + step, series.at, step))
            answers = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            client.close()
        failed = [a for a in answers if isinstance(a, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)} naive queries failed: {failed[0]}")
        features: dict[tuple[str, str], set] = {}
        for (window, name, _, _), answer in zip(instants, answers):
            if name in FEATURE_QUERIES:
                features.setdefault((window, name), set()).update(_keyed(answer))
        return len(calls), features

    return await asyncio.gather(*(one(spec) for spec in specs))


def _keyed(samples) -> set:
    return {(tuple(sorted(s.labels.items())), round(s.value, 6)) for s in samples}


def run(settings: Settings, stack: Stack, *, profile: bool = False, log=print) -> Bench:
    fleet = stack.fleet
    specs = [ModelMonitorSpec.model_validate(monitor_spec(model, stack.prometheus.url)) for model in fleet.models]
    at = fleet.history.end
    bench = Bench(
        "query_fanout",
        f"3. Query fan-out: {len(specs)} monitors x {len(fleet.features)} features against Prometheus, one cycle",
        header=("plan", "queries per cycle", "wall per cycle, median [min-max]", "x grouped"),
    )

    answered: dict[str, list[float]] = {"grouped": [], "naive": []}

    def grouped():
        answered["grouped"] = []
        return asyncio.run(grouped_cycle(specs, at, answered["grouped"]))

    def naive():
        answered["naive"] = []
        return asyncio.run(naive_cycle(specs, at, fleet.numerical, fleet.categorical, answered["naive"]))

    # Warm-up, then the two plans alternate so that drifting machine load hits both alike.
    observations, naive_result = grouped(), naive()
    runs: dict[str, list[float]] = {"grouped": [], "naive": []}
    for _ in range(settings.repeats):
        for key, plan in (("grouped", grouped), ("naive", naive)):
            began = time.perf_counter()
            result = plan()
            runs[key].append(time.perf_counter() - began)
            if key == "grouped":
                observations = result
            else:
                naive_result = result
    timings = {key: Timing.of(values) for key, values in runs.items()}
    log(f"  grouped: {timings['grouped']}; naive: {timings['naive']}")

    failures = sum(1 for o in observations for q in (*o.current.values(), *o.baseline.values()) if not q.ok)
    grouped_queries = sum(o.query_count for o in observations)
    naive_queries = sum(count for count, _ in naive_result)
    identical = all(
        _keyed(obs_window[name].samples) == features.get((window, name), set())
        for obs, (_, features) in zip(observations, naive_result)
        for window, obs_window in (("current", obs.current), ("baseline", obs.baseline))
        for name in FEATURE_QUERIES
        if name in obs_window
    )

    # The statistics of the same cycle, on the grouped answers: what follows the queries.
    began = time.process_time()
    evaluations = [
        decide_monitor(spec, ModelMonitorStatus(), obs, generation=1, now=at) for spec, obs in zip(specs, observations)
    ]
    evaluate_cpu = time.process_time() - began
    if profile:
        bench.figures["profile_evaluate_monitor"] = profile_top(
            lambda: [
                decide_monitor(spec, ModelMonitorStatus(), obs, generation=1, now=at)
                for spec, obs in zip(specs[:20], observations[:20])
            ],
            lines=25,
        )
    expected = {f for i, f in enumerate(fleet.numerical) if i % 10 == 0} | {
        f for i, f in enumerate(fleet.categorical) if i % 5 == 0
    }
    as_built = sum({f.name for f in e.status.features if f.verdict == "Drift"} == expected for e in evaluations)

    g, n = timings["grouped"], timings["naive"]
    bench.rows.append(
        ("modelpilot: one query per metric family and window (observe_monitor)", f"{grouped_queries:,}", str(g), "1")
    )
    bench.rows.append(
        ("naive: one query per feature and window", f"{naive_queries:,}", str(n), f"{ratio(n.median, g.median):.2f}")
    )
    bench.rows.append(("then evaluate_monitor on the grouped answers (CPU, all monitors)", "", f"{evaluate_cpu:.2f} s", ""))
    bench.notes.append(
        f"naive / grouped: {ratio(naive_queries, grouped_queries):.1f}x the queries, "
        f"{ratio(n.median, g.median):.2f}x the wall time; feature answers identical in both plans: "
        f"{'yes' if identical else 'NO'}; failed queries: {failures}"
    )
    own_timeout = parse_duration(specs[0].prometheus.timeout).total_seconds()
    late = {key: sum(1 for t in values if t > own_timeout) for key, values in answered.items()}
    bench.notes.append(
        f"every query of a cycle is submitted at once and waits in asyncio's default thread pool "
        f"({min(32, (os.cpu_count() or 1) + 4)} threads here), so queueing counts against a query's timeout: "
        f"last answer after {max(answered['grouped']):.1f}s (grouped) and {max(answered['naive']):.1f}s (naive); "
        f"answers later than the monitors' {own_timeout:.0f}s timeout, which would have failed in the operator: "
        f"{late['grouped']} grouped, {late['naive']:,} naive (the measured cycles allow {CYCLE_TIMEOUT.seconds // 60} min)"
    )
    bench.notes.append(f"verdicts as constructed (drifted: {', '.join(sorted(expected))}) on {as_built}/{len(specs)} monitors")
    facts = stack.facts
    bench.notes.append(
        f"history: {facts['series']:,} series, {facts['samples']:,} samples, {facts['step_seconds'] / 60:.0f}-minute step "
        f"over 2 days; drift window 1d against the day before; the client runs each query in a thread of "
        f"asyncio's default pool, as the operator does"
    )
    bench.figures.update(
        {
            "monitors": len(specs),
            "features": len(fleet.features),
            "stack": facts,
            "queries": {"grouped": grouped_queries, "naive": naive_queries},
            "wall_seconds": {k: t.median for k, t in timings.items()},
            "timings": {k: vars(t) | {"runs": list(t.runs)} for k, t in timings.items()},
            "answers_identical": identical,
            "failed_queries": failures,
            "last_answer_seconds": {k: max(v) for k, v in answered.items()},
            "answers_after_monitor_timeout": late,
            "evaluate_cpu_seconds": evaluate_cpu,
            "verdicts_as_constructed": as_built,
        }
    )
    bench.result = ("query_fanout_naive_over_grouped_wall", f"{ratio(n.median, g.median):.2f}")
    return bench
