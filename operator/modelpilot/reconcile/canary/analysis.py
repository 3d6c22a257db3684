"""One analysis check of a canary: PromQL for each metric, and each metric's verdict from the
candidate's and the stable's answers over the same window.

A built-in metric is judged twice: on its absolute limits (thresholdRange, once the candidate
has ``minSamples``) and against stable (``compare_proportions`` / ``compare_binned`` with the
metric's tolerance). Either failing fails it; it passes only when both pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelpilot.analysis import Comparison, compare_binned, compare_proportions
from modelpilot.analysis.histogram import BucketCounts, buckets_from_cumulative, histogram_quantile
from modelpilot.api.canary import AnalysisMetric, AnalysisSpec, CanaryAnalysisRecord, CheckVerdict

from ..promql import PRESETS, render
from ..queries import QueryOutcome, usable_count
from .observations import MetricAnswer, MetricQueries

__all__ = [
    "AGREEMENT",
    "CHECK_ORDER",
    "agreement_queries",
    "class_shares",
    "judge_metric",
    "metric_queries",
    "proportion_counts",
    "worst",
]

#: The queries of a shadow's agreement: capitalised, so no analysis metric (lower case) has the name.
AGREEMENT = "Agreement"

# The generic preset is the data contract that has a `version` label on every series.
_PRESET = PRESETS["generic"]
_BUILTIN_QUERY = {"error-rate": "requests", "latency": "latencyBuckets", "accuracy": "feedback"}

#: Verdicts from worst to best: a check's outcome is its worst metric's.
CHECK_ORDER: tuple[CheckVerdict, ...] = ("Fail", "QueryError", "NoData", "Inconclusive", "Pass")


def worst(verdicts: Iterable[CheckVerdict]) -> CheckVerdict:
    return min(verdicts, key=CHECK_ORDER.index, default="Pass")


def metric_queries(
    metrics: Iterable[AnalysisMetric], *, model: str, stable: str, candidate: str, namespace: str, window: timedelta
) -> dict[str, MetricQueries]:
    """PromQL per metric for the candidate and the stable version over the same window."""

    def rendered(metric: AnalysisMetric, version: str) -> str:
        # A custom query is rendered as an override of a query named after the metric.
        name = _BUILTIN_QUERY[metric.builtin] if metric.builtin else metric.name
        overrides = {metric.name: metric.query} if metric.query else None
        query = render(_PRESET, name, model=model, version=version, namespace=namespace, window=window, overrides=overrides)
        assert query is not None
        return query

    return {m.name: MetricQueries(rendered(m, candidate), rendered(m, stable)) for m in metrics}


def agreement_queries(*, model: str, stable: str, candidate: str, namespace: str, window: timedelta) -> MetricQueries:
    """Predicted classes of the candidate and of the stable over the same (mirrored) requests."""

    def rendered(version: str) -> str:
        query = render(_PRESET, "predictions", model=model, version=version, namespace=namespace, window=window)
        assert query is not None
        return query

    return MetricQueries(rendered(candidate), rendered(stable))


def class_shares(answer: MetricAnswer) -> tuple[tuple[dict[str, float], float], tuple[dict[str, float], float]] | None:
    """Each side's share of predictions per class and its total; None when a side has none or
    its answer is unusable."""
    sides = []
    for outcome in (answer.candidate, answer.stable):
        if not _counts_usable(outcome):
            return None
        counts: dict[str, float] = {}
        for sample in outcome.samples:
            key = sample.labels.get("class", "")
            counts[key] = counts.get(key, 0.0) + sample.value
        total = sum(counts.values())
        if total <= 0:
            return None
        sides.append(({k: v / total for k, v in counts.items()}, total))
    return sides[0], sides[1]


@dataclass(frozen=True)
class _Side:
    """One version's figures: the metric value, its sample count, and what the test needs."""

    value: float | None
    samples: float
    events: float = 0.0
    buckets: BucketCounts | None = None


#: A side whose answer cannot be judged: it counts as no data, which spec.analysis.noData decides.
_UNJUDGEABLE = _Side(None, 0.0)


def _counts_usable(outcome: QueryOutcome) -> bool:
    return all(usable_count(s.value) for s in outcome.samples)


def _proportion(outcome: QueryOutcome, is_event: str) -> _Side:
    if not _counts_usable(outcome):
        return _UNJUDGEABLE
    total = events = 0.0
    for sample in outcome.samples:
        total += sample.value
        if (is_event == "error" and sample.labels.get("status") != "success") or (
            is_event == "right" and sample.labels.get("predicted") == sample.labels.get("actual")
        ):
            events += sample.value
    return _Side(events / total if total > 0 else None, total, events)


def _latency(outcome: QueryOutcome, bounds: set[str]) -> _Side:
    shared = [s for s in outcome.samples if s.labels.get("le") in bounds]
    try:
        pairs = [(float(s.labels["le"]), s.value) for s in shared]
    except ValueError:  # a bucket bound that is not a number
        return _UNJUDGEABLE
    if not _counts_usable(outcome) or any(math.isnan(bound) for bound, _ in pairs):
        return _UNJUDGEABLE
    buckets = buckets_from_cumulative(pairs)
    p99 = histogram_quantile(0.99, buckets) if buckets.total > 0 else math.nan
    return _Side(None if math.isnan(p99) else p99, buckets.total, buckets=buckets)


def _scalar(outcome: QueryOutcome) -> _Side:
    # +Inf or NaN (a division by zero in the query) is no answer, not a value to judge.
    values = [s.value for s in outcome.samples if math.isfinite(s.value)]
    return _Side(values[0] if values else None, float(bool(values)))


def _sides(metric: AnalysisMetric, answer: MetricAnswer) -> tuple[_Side, _Side]:
    if metric.builtin == "latency":
        # Both sides on the bucket bounds they share, so counts per bucket line up.
        common = {s.labels.get("le", "") for s in answer.candidate.samples} & {
            s.labels.get("le", "") for s in answer.stable.samples
        }
        return _latency(answer.candidate, common), _latency(answer.stable, common)
    if metric.builtin is not None:
        kind = "error" if metric.builtin == "error-rate" else "right"
        return _proportion(answer.candidate, kind), _proportion(answer.stable, kind)
    return _scalar(answer.candidate), _scalar(answer.stable)


def proportion_counts(metric: AnalysisMetric, answer: MetricAnswer) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """(events, samples) of the candidate and of the stable for a built-in proportion (errors of
    error-rate, right predictions of accuracy); None when either answer is unusable."""
    candidate, stable = _sides(metric, answer)
    if candidate is _UNJUDGEABLE or stable is _UNJUDGEABLE:
        return None
    return (candidate.events, candidate.samples), (stable.events, stable.samples)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _threshold_check(metric: AnalysisMetric, candidate: _Side, min_samples: int) -> tuple[CheckVerdict, float | None, str]:
    """Verdict on the absolute limits alone, the limit crossed, and why."""
    limits = metric.threshold_range
    if limits is None or (limits.min is None and limits.max is None):
        return "Pass", None, "no thresholds"
    if metric.builtin is not None and candidate.samples < min_samples:
        return "Inconclusive", None, f"{candidate.samples:.0f} samples, need {min_samples} to judge thresholds"
    value = candidate.value
    assert value is not None
    if limits.max is not None and value > limits.max:
        return "Fail", limits.max, f"{_fmt(value)} above the maximum {limits.max:g}"
    if limits.min is not None and value < limits.min:
        return "Fail", limits.min, f"{_fmt(value)} below the minimum {limits.min:g}"
    return "Pass", None, f"{_fmt(value)} within thresholds"


def _comparison(metric: AnalysisMetric, analysis: AnalysisSpec, candidate: _Side, stable: _Side) -> Comparison:
    tolerance = metric.effective_tolerance()
    if metric.builtin == "latency":
        assert candidate.buckets is not None and stable.buckets is not None
        return compare_binned(
            stable.buckets.counts,
            candidate.buckets.counts,
            tolerance=tolerance,
            alpha=analysis.alpha,
            min_samples=analysis.min_samples,
        )
    return compare_proportions(
        stable.events,
        stable.samples,
        candidate.events,
        candidate.samples,
        tolerance=tolerance,
        alpha=analysis.alpha,
        higher_is_worse=metric.builtin == "error-rate",
        min_samples=analysis.min_samples,
    )


def judge_metric(
    metric: AnalysisMetric, analysis: AnalysisSpec, answer: MetricAnswer, *, thresholds_only: bool, now: datetime
) -> CanaryAnalysisRecord:
    """The verdict of one metric for one check. ``thresholds_only``: the step has been
    inconclusive long enough; the absolute limits decide alone."""
    failed = answer.candidate.error or answer.stable.error
    if failed is not None:
        return CanaryAnalysisRecord(metric=metric.name, time=now, verdict="QueryError", message=failed.message)
    candidate, stable = _sides(metric, answer)
    record = {
        "metric": metric.name,
        "time": now,
        "value": candidate.value,
        "baseline": stable.value,
        "samples": int(candidate.samples) if metric.builtin else None,
        "baseline_samples": int(stable.samples) if metric.builtin else None,
    }
    if candidate.samples == 0 or candidate.value is None:
        return CanaryAnalysisRecord(**record, verdict="NoData", message="the candidate has no data in the window")

    verdict, limit, why = _threshold_check(metric, candidate, analysis.min_samples)
    compare = metric.builtin is not None and metric.compare_to_stable and not thresholds_only
    if verdict == "Fail" or not compare:
        suffix = " (decided on thresholds after inconclusive checks)" if thresholds_only and metric.builtin else ""
        return CanaryAnalysisRecord(
            **record,
            verdict=verdict,
            threshold=limit,
            message=f"candidate {why}; stable {_fmt(stable.value)}{suffix}",
        )
    if stable.samples == 0:
        # The stable took no traffic in the window (the candidate carries it all): nothing to
        # compare with, so the limits decide.
        return CanaryAnalysisRecord(
            **record, verdict=verdict, threshold=limit, message=f"candidate {why}; stable has no data to compare with"
        )
    comparison = _comparison(metric, analysis, candidate, stable)
    combined = worst([verdict, comparison.verdict])
    return CanaryAnalysisRecord(
        **record,
        verdict=combined,
        pvalue=_finite(comparison.pvalue),
        effect=_finite(comparison.effect),
        threshold=metric.effective_tolerance() if comparison.verdict == "Fail" else limit,
        message=f"candidate {_fmt(candidate.value)} vs stable {_fmt(stable.value)}: {comparison.detail}; thresholds: {why}",
    )
