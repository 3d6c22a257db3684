"""ModelMonitor evaluation: from observations to conditions, per-check results, alerts and Events.

Pure: it takes what the sources observed and the previous status, and returns the new status
and the Events to post. A check whose queries failed keeps its last good result and reports
``Unknown``; missing data never turns a problem condition to False.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np

from modelpilot.analysis import (
    FeatureDrift,
    FeatureVerdict,
    assess_drift,
    buckets_from_cumulative,
    confusion_from_counts,
    drift_from_counts,
    histogram_quantile,
    mann_kendall,
    page_hinkley,
    quality_from_confusion,
    rank_by_effect,
)
from modelpilot.api import Condition, ConditionStatus, parse_duration
from modelpilot.api.profile import NumericalProfile, ReferenceProfile
from modelpilot.api.monitor import (
    AlertRecord,
    ClassQuality,
    DegradationStatus,
    FeatureResult,
    LabelDriftStatus,
    ModelMonitorSpec,
    ModelMonitorStatus,
    MonitorSummary,
    PerformanceStatus,
    QualityStatus,
)
from modelpilot.sources.observe import MonitorObservations, QueryOutcome
from modelpilot.sources.promql import PRESETS

from .conditions import EventToPost, changed_conditions, set_condition

__all__ = [
    "CONDITION_TYPES",
    "PROBLEMS",
    "EventToPost",
    "MonitorEvaluation",
    "evaluate_monitor",
    "is_due",
]

CONDITION_TYPES = (
    "Ready",
    "Healthy",
    "PerformanceDegraded",
    "LatencyHigh",
    "ErrorRateHigh",
    "DataDrift",
    "LabelDrift",
    "ConceptDrift",
)
# The status that means "something is wrong" for each condition, and how loud it is.
PROBLEMS: dict[str, tuple[ConditionStatus, Literal["info", "warning", "critical"]]] = {
    "Healthy": ("False", "critical"),
    "PerformanceDegraded": ("True", "critical"),
    "ErrorRateHigh": ("True", "critical"),
    "LatencyHigh": ("True", "warning"),
    "DataDrift": ("True", "warning"),
    "LabelDrift": ("True", "warning"),
    "ConceptDrift": ("True", "warning"),
}
HISTORY_LIMIT = 20
FIRST_RETRY = timedelta(seconds=15)


@dataclass(frozen=True)
class Verdict:
    """A condition's new value."""

    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True)
class MonitorEvaluation:
    status: ModelMonitorStatus
    events: list[EventToPost] = field(default_factory=list)


def is_due(status: ModelMonitorStatus, generation: int | None, now: datetime) -> bool:
    """Evaluate now? Yes when never evaluated, the spec changed, or the scheduled time came."""
    if status.last_evaluation is None or status.next_evaluation is None:
        return True
    if generation is not None and status.observed_generation != generation:
        return True
    return now >= status.next_evaluation


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}{unit}"


def _failure(outcomes: Iterable[QueryOutcome | None]) -> QueryOutcome | None:
    return next((o for o in outcomes if o is not None and not o.ok), None)


def _failed_verdict(outcome: QueryOutcome, last_good: datetime | None) -> Verdict:
    assert outcome.error is not None
    since = f"; last good result from {last_good.isoformat()}" if last_good else ""
    return Verdict("Unknown", "QueryFailed", f"{outcome.error.message}{since}")


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


# --- performance -------------------------------------------------------------------------


def _performance(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[PerformanceStatus | None, Verdict, Verdict]:
    preset = PRESETS[spec.metrics.preset]
    q = obs.current
    deployment = obs.deployment
    replicas = {
        "ready_replicas": deployment.ready if deployment else None,
        "desired_replicas": deployment.desired if deployment else None,
    }
    failed = _failure(q.get(n) for n in ("latencyBuckets", "latencySum", "requests"))
    if failed is not None:
        kept = previous.performance.model_copy(update=replicas) if previous.performance else None
        verdict = _failed_verdict(failed, previous.last_success)
        return kept, verdict, verdict

    window = parse_duration(spec.performance.window).total_seconds()
    bucket_samples = q["latencyBuckets"].samples if "latencyBuckets" in q else ()
    buckets = buckets_from_cumulative(
        (float(s.labels.get("le", "+Inf")) * preset.latency_unit, s.value) for s in bucket_samples
    )
    count = buckets.total
    latency_sum = sum(s.value for s in q["latencySum"].samples) if "latencySum" in q else 0.0
    requests = q["requests"].samples if "requests" in q else ()
    total = sum(s.value for s in requests)
    errors = sum(s.value for s in requests if s.labels.get("status") != "success")
    errors_known = preset.reports_errors or "requests" in spec.metrics.overrides
    batch = q.get("batchSize")
    batch_mean = batch.samples[0].value if batch is not None and batch.ok and batch.samples else None

    def quantile(level: float) -> float | None:
        return _finite(histogram_quantile(level, buckets)) if count > 0 else None

    performance = PerformanceStatus(
        latency_mean=latency_sum / count if count > 0 else None,
        latency_p50=quantile(0.5),
        latency_p95=quantile(0.95),
        latency_p99=quantile(0.99),
        throughput=total / window,
        error_rate=errors / total if total > 0 and errors_known else None,
        batch_size_mean=_finite(batch_mean) if batch_mean is not None else None,
        **replicas,
    )
    return performance, _latency_verdict(spec, performance, count), _error_verdict(spec, performance, total, errors_known)


def _latency_verdict(spec: ModelMonitorSpec, performance: PerformanceStatus, count: float) -> Verdict:
    limits = [
        (name, limit, observed)
        for name, limit, observed in (
            ("p99", spec.performance.latency_p99, performance.latency_p99),
            ("p95", spec.performance.latency_p95, performance.latency_p95),
        )
        if limit is not None
    ]
    if not limits:
        return Verdict("False", "NoThreshold", "no latency threshold is set")
    if count <= 0:
        return Verdict("Unknown", "NoTraffic", f"no requests in the last {spec.performance.window}")
    over = [f"{n} {_fmt(v, 's')} > {_fmt(limit, 's')}" for n, limit, v in limits if v is not None and v > limit]
    if over:
        return Verdict("True", "AboveThreshold", f"latency {', '.join(over)} over {spec.performance.window}")
    within = ", ".join(f"{n} {_fmt(v, 's')} <= {_fmt(limit, 's')}" for n, limit, v in limits)
    return Verdict("False", "WithinThreshold", f"latency {within} over {spec.performance.window}")


def _error_verdict(spec: ModelMonitorSpec, performance: PerformanceStatus, total: float, known: bool) -> Verdict:
    limit = spec.performance.error_rate
    if limit is None:
        return Verdict("False", "NoThreshold", "no error-rate threshold is set")
    if not known:
        return Verdict(
            "Unknown", "NotExported",
            f"the {spec.metrics.preset} preset exports no error counts; override the `requests` query",
        )
    if total <= 0 or performance.error_rate is None:
        return Verdict("Unknown", "NoTraffic", f"no requests in the last {spec.performance.window}")
    rate = performance.error_rate
    if rate > limit:
        return Verdict("True", "AboveThreshold", f"error rate {rate:.2%} > {limit:.2%} of {total:.0f} requests")
    return Verdict("False", "WithinThreshold", f"error rate {rate:.2%} <= {limit:.2%} of {total:.0f} requests")


def _health_verdict(obs: MonitorObservations) -> Verdict:
    deployment = obs.deployment
    if deployment is None:
        return Verdict("Unknown", "NotConfigured", "no serving Deployment is named in spec.deployment")
    if deployment.error is not None:
        return Verdict("Unknown", deployment.reason or "DeploymentUnavailable", deployment.error)
    ready, desired = deployment.ready or 0, deployment.desired or 0
    if desired == 0:
        return Verdict("False", "ScaledToZero", f"Deployment {deployment.name} wants 0 replicas")
    if ready < desired:
        return Verdict("False", "ReplicasUnavailable", f"{ready}/{desired} replicas of {deployment.name} ready")
    return Verdict("True", "ReplicasReady", f"{ready}/{desired} replicas of {deployment.name} ready")


# --- quality -----------------------------------------------------------------------------


def _confusion_rows(samples: Iterable[tuple[Mapping[str, str], float]]) -> list[tuple[str, str, float]]:
    return [(labels.get("predicted", ""), labels.get("actual", ""), value) for labels, value in samples]


def _quality(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus, predicted_share: Mapping[str, float]
) -> tuple[QualityStatus | None, QueryOutcome | None]:
    feedback = obs.current.get("feedback")
    if feedback is None:
        return None, None
    if not feedback.ok:
        return previous.quality, feedback
    rows = _confusion_rows((s.labels, s.value) for s in feedback.samples)
    matrix, labels = confusion_from_counts(rows)
    samples = int(round(float(np.sum(matrix)))) if len(labels) else 0
    quality = quality_from_confusion(matrix, labels, min_samples=spec.quality.min_samples)
    if quality is None:
        return QualityStatus(samples=samples), None
    return (
        QualityStatus(
            samples=samples,
            accuracy=quality.accuracy,
            precision_macro=quality.precision_macro,
            recall_macro=quality.recall_macro,
            f1_macro=quality.f1_macro,
            precision_weighted=quality.precision_weighted,
            recall_weighted=quality.recall_weighted,
            f1_weighted=quality.f1_weighted,
            classes=[
                ClassQuality(
                    name=name,
                    precision=scores.precision,
                    recall=scores.recall,
                    f1=scores.f1,
                    support=int(scores.support),
                    predicted_share=predicted_share.get(name),
                )
                for name, scores in quality.per_class.items()
            ],
        ),
        None,
    )


def _quality_value(quality: QualityStatus, metric: str) -> float | None:
    return {
        "accuracy": quality.accuracy,
        "precision": quality.precision_macro,
        "recall": quality.recall_macro,
        "f1": quality.f1_macro,
    }[metric]


def _degradation_verdict(
    spec: ModelMonitorSpec,
    quality: QualityStatus | None,
    failed: QueryOutcome | None,
    degradation: DegradationStatus | None,
    hints: Sequence[str],
    last_good: datetime | None,
) -> Verdict:
    below = []
    if quality is not None and quality.accuracy is not None:
        for metric in ("accuracy", "precision", "recall", "f1"):
            limit = getattr(spec.quality, metric)
            value = _quality_value(quality, metric)
            if limit is not None and value is not None and value < limit:
                below.append(f"{metric} {value:.3f} < {limit:.3f}")
    cause = f"; drifted features by effect size: {', '.join(hints)}" if hints else ""
    if below:
        return Verdict("True", "BelowThreshold", f"{', '.join(below)} over {spec.quality.window}{cause}")
    if degradation is not None and degradation.direction == "decreasing" and spec.degradation.enabled:
        return Verdict(
            "True", "DecliningTrend",
            f"{degradation.metric} declines {_fmt(degradation.sen_slope)}/day over {spec.degradation.horizon} "
            f"(Mann-Kendall p={_fmt(degradation.pvalue)}, change {_fmt(degradation.change)}){cause}",
        )
    if failed is not None:
        return _failed_verdict(failed, last_good)
    if quality is None:
        return Verdict("Unknown", "NoQualityData", "no model_feedback_total query for this preset")
    if quality.accuracy is None:
        return Verdict(
            "Unknown", "InsufficientData",
            f"{quality.samples} labelled predictions over {spec.quality.window}, need {spec.quality.min_samples}",
        )
    summary = ", ".join(
        f"{m} {_fmt(_quality_value(quality, m))}" for m in ("accuracy", "f1") if _quality_value(quality, m) is not None
    )
    return Verdict("False", "WithinThreshold", f"{summary} over {spec.quality.window} ({quality.samples} labels)")


# --- drift -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FeatureCounts:
    kind: Literal["numerical", "categorical"]
    bounds: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    categories: Mapping[str, float] = field(default_factory=dict)


def _window_counts(buckets: QueryOutcome | None, categories: QueryOutcome | None) -> dict[str, _FeatureCounts]:
    features: dict[str, _FeatureCounts] = {}
    if buckets is not None and buckets.ok:
        grouped: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for s in buckets.samples:
            grouped[s.labels.get("feature", "")].append((float(s.labels.get("le", "+Inf")), s.value))
        for name, pairs in grouped.items():
            counts = buckets_from_cumulative(pairs)
            features[name] = _FeatureCounts(
                "numerical", tuple(float(b) for b in counts.upper_bounds), tuple(float(c) for c in counts.counts)
            )
    if categories is not None and categories.ok:
        by_feature: dict[str, dict[str, float]] = defaultdict(dict)
        for s in categories.samples:
            by_feature[s.labels.get("feature", "")][s.labels.get("category", "")] = s.value
        for name, values in by_feature.items():
            features[name] = _FeatureCounts("categorical", categories=values)
    return features


def _profile_counts(profile: ReferenceProfile) -> dict[str, _FeatureCounts]:
    """Counts from a reference profile (see ``modelpilot profile``), shaped like a window's."""
    features: dict[str, _FeatureCounts] = {}
    for name, entry in profile.features.items():
        if isinstance(entry, NumericalProfile):
            features[name] = _FeatureCounts("numerical", (*entry.upper_bounds, math.inf), tuple(entry.counts))
        else:
            features[name] = _FeatureCounts("categorical", categories=dict(entry.counts))
    return features


def _feature_drift(spec: ModelMonitorSpec, reference: _FeatureCounts, current: _FeatureCounts) -> FeatureDrift | str:
    common = {"min_samples": spec.drift.min_samples, "bands": tuple(spec.drift.psi_bands)}
    if reference.kind != current.kind:
        return "numerical in one window and categorical in the other"
    if reference.kind == "numerical":
        if reference.bounds != current.bounds:
            return "histogram bucket bounds differ between baseline and current window"
        return drift_from_counts(
            reference.counts, current.counts, kind="numerical", upper_bounds=reference.bounds, **common
        )
    names = sorted(set(reference.categories) | set(current.categories))
    return drift_from_counts(
        [reference.categories.get(n, 0.0) for n in names],
        [current.categories.get(n, 0.0) for n in names],
        kind="categorical",
        categories=names,
        **common,
    )


def _feature_result(name: str, drift: FeatureDrift | None, verdict: FeatureVerdict | None, note: str) -> FeatureResult:
    if drift is None or verdict is None:
        return FeatureResult(name=name, kind="numerical", verdict="InsufficientData", test=note or None)
    return FeatureResult(
        name=name,
        kind=drift.kind,
        verdict=verdict.verdict,
        psi=_finite(drift.psi),
        psi_expected=_finite(drift.psi_expected),
        psi_band=drift.psi_band,
        ks=_finite(drift.ks) if drift.ks is not None else None,
        js=_finite(drift.js),
        wasserstein=_finite(drift.wasserstein) if drift.wasserstein is not None else None,
        chi2=_finite(drift.chi2) if drift.chi2 is not None else None,
        pvalue=_finite(drift.pvalue),
        corrected_pvalue=_finite(verdict.corrected_pvalue),
        test=drift.test if drift.outcome == "Ok" else f"{drift.test} ({drift.outcome})",
        reference_samples=drift.n_reference,
        current_samples=drift.n_current,
        unseen_categories=list(drift.unseen_categories),
    )


def _data_drift(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[list[FeatureResult], dict[str, FeatureVerdict], Verdict]:
    if not spec.drift.enabled:
        return [], {}, Verdict("False", "Disabled", "data drift checks are disabled (spec.drift.enabled)")
    current_q = (obs.current.get("featureBuckets"), obs.current.get("featureCategories"))
    baseline_q = (obs.baseline.get("featureBuckets"), obs.baseline.get("featureCategories"))
    failed = _failure((*current_q, *baseline_q))
    if failed is not None:
        return previous.features, {}, _failed_verdict(failed, previous.last_success)
    if obs.profile is not None:
        reference = _profile_counts(obs.profile)
    elif spec.drift.baseline.mlflow_profile:
        return previous.features, {}, Verdict("Unknown", "NoReferenceProfile", "no reference profile")
    else:
        reference = _window_counts(*baseline_q)
    current = _window_counts(*current_q)
    names = sorted(set(reference) | set(current))
    if spec.drift.features:
        names = [n for n in spec.drift.features]
    drifts: dict[str, FeatureDrift] = {}
    notes: dict[str, str] = {}
    for name in names:
        if name not in current or name not in reference:
            notes[name] = f"no data in the {'current window' if name not in current else 'baseline'}"
            continue
        outcome = _feature_drift(spec, reference[name], current[name])
        if isinstance(outcome, str):
            notes[name] = outcome
        else:
            drifts[name] = outcome
    verdicts = assess_drift(
        drifts,
        alpha=spec.drift.alpha,
        correction=spec.drift.correction,
        effect_size=spec.drift.effect_size,
        effect_threshold=spec.drift.effect_threshold,
    )
    results = [_feature_result(n, drifts.get(n), verdicts.get(n), notes.get(n, "")) for n in names]
    drifted = [r for r in results if r.verdict == "Drift"]
    tested = [r for r in results if r.verdict != "InsufficientData"]
    if not names:
        return results, verdicts, Verdict("Unknown", "NoData", "no feature metrics (model_feature_*) in either window")
    if drifted:
        ranked = sorted(drifted, key=lambda r: -(verdicts[r.name].effect or 0.0))
        detail = ", ".join(f"{r.name} ({spec.drift.effect_size} {_fmt(verdicts[r.name].effect)}, {r.psi_band})" for r in ranked)
        return results, verdicts, Verdict("True", "FeaturesDrifted", f"{len(drifted)}/{len(names)} features drifted: {detail}")
    if not tested:
        return results, verdicts, Verdict(
            "Unknown", "InsufficientData", f"fewer than {spec.drift.min_samples} samples for every feature"
        )
    skipped = len(names) - len(tested)
    extra = f"; {skipped} with too little data" if skipped else ""
    return results, verdicts, Verdict("False", "NoDrift", f"0/{len(tested)} tested features drifted{extra}")


def _shares(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total > 0 else {}


def _label_drift(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[LabelDriftStatus | None, dict[str, float], Verdict]:
    current_q = obs.current.get("predictions")
    current = {s.labels.get("class", ""): s.value for s in current_q.samples} if current_q and current_q.ok else {}
    if not spec.label_drift.enabled:
        return None, _shares(current), Verdict("False", "Disabled", "label drift checks are disabled")
    baseline_q = obs.baseline.get("predictions")
    failed = _failure((current_q, baseline_q))
    if failed is not None:
        return previous.label_drift, _shares(current), _failed_verdict(failed, previous.last_success)
    if obs.profile is not None:
        reference = dict(obs.profile.predictions)
    else:
        reference = {s.labels.get("class", ""): s.value for s in baseline_q.samples} if baseline_q else {}
    if not current or not reference:
        where = "current window" if not current else "baseline"
        return None, _shares(current), Verdict("Unknown", "NoData", f"no model_predictions_total in the {where}")
    names = sorted(set(reference) | set(current))
    drift = drift_from_counts(
        [reference.get(n, 0.0) for n in names],
        [current.get(n, 0.0) for n in names],
        kind="categorical",
        categories=names,
        min_samples=spec.drift.min_samples,
    )
    verdict = assess_drift(
        {"predictions": drift}, alpha=spec.label_drift.alpha, correction="none",
        effect_size="psi", effect_threshold=spec.label_drift.effect_threshold,
    )["predictions"]
    ref_share, cur_share = _shares(reference), _shares(current)
    shift = {n: round(cur_share.get(n, 0.0) - ref_share.get(n, 0.0), 6) for n in names}
    status = LabelDriftStatus(verdict=verdict.verdict, pvalue=_finite(drift.pvalue), psi=_finite(drift.psi), class_shift=shift)
    moved = ", ".join(f"{n} {v:+.1%}" for n, v in sorted(shift.items(), key=lambda kv: -abs(kv[1]))[:3])
    if verdict.drifted is None:
        return status, cur_share, Verdict("Unknown", "InsufficientData", verdict.reason)
    if verdict.drifted:
        return status, cur_share, Verdict(
            "True", "ClassDistributionShifted", f"prediction classes shifted (PSI {_fmt(drift.psi)}, p={_fmt(drift.pvalue)}): {moved}"
        )
    return status, cur_share, Verdict("False", "NoDrift", f"prediction classes stable (PSI {_fmt(drift.psi)}, p={_fmt(drift.pvalue)})")


# --- degradation -------------------------------------------------------------------------


def _quality_series(spec: ModelMonitorSpec, outcome: QueryOutcome) -> tuple[list[float], list[float]]:
    """Per-step quality metric from (predicted, actual) series; steps with too few labels are left out."""
    by_time: dict[float, list[tuple[str, str, float]]] = defaultdict(list)
    for series in outcome.series:
        for t, v in series.points:
            by_time[t].append((series.labels.get("predicted", ""), series.labels.get("actual", ""), v))
    times, values = [], []
    for t in sorted(by_time):
        quality = quality_from_confusion(*confusion_from_counts(by_time[t]), min_samples=spec.quality.min_samples)
        if quality is None:
            continue
        value = {
            "accuracy": quality.accuracy,
            "precision": quality.precision_macro,
            "recall": quality.recall_macro,
            "f1": quality.f1_macro,
        }[spec.degradation.metric]
        times.append(t)
        values.append(value)
    return times, values


def _degradation(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[DegradationStatus | None, Verdict]:
    if not spec.degradation.enabled:
        return None, Verdict("False", "Disabled", "degradation checks are disabled")
    outcome = obs.quality_series
    if outcome is None:
        return None, Verdict("Unknown", "NoQualityData", "no model_feedback_total query for this preset")
    if not outcome.ok:
        return previous.degradation, _failed_verdict(outcome, previous.last_success)
    times, values = _quality_series(spec, outcome)
    metric = spec.degradation.metric
    days = [t / 86400.0 for t in times]
    trend = mann_kendall(values, days, alpha=spec.degradation.alpha)
    if trend.direction == "insufficient":
        status = DegradationStatus(metric=metric, points=len(values), direction="insufficient")
        return status, Verdict(
            "Unknown", "InsufficientData",
            f"{len(values)} {spec.degradation.step} points of {metric} with enough labels over {spec.degradation.horizon}",
        )
    changes = page_hinkley(values, delta=spec.degradation.delta, threshold=spec.degradation.threshold, direction="decrease")
    change_times = [datetime.fromtimestamp(times[i], timezone.utc) for i in changes]
    status = DegradationStatus(
        metric=metric,
        points=len(values),
        direction=trend.direction,
        tau=_finite(trend.tau),
        pvalue=_finite(trend.pvalue),
        sen_slope=_finite(trend.slope),
        change=_finite(trend.change),
        change_points=change_times,
    )
    if change_times:
        when = ", ".join(t.date().isoformat() for t in change_times)
        return status, Verdict("True", "ChangePointDetected", f"{metric} shifted down (Page-Hinkley) at {when}")
    return status, Verdict("False", "NoChangePoint", f"no downward shift of {metric} over {spec.degradation.horizon}")


# --- putting it together -----------------------------------------------------------------


def _alerts(
    before: Sequence[Condition], after: Sequence[Condition], history: Sequence[AlertRecord], now: datetime
) -> list[AlertRecord]:
    old = {c.type: c.status for c in before}
    records = list(history)
    for condition in after:
        if condition.type not in PROBLEMS or old.get(condition.type) == condition.status:
            continue
        bad, severity = PROBLEMS[condition.type]
        if condition.status == bad:
            records.append(AlertRecord(time=now, type=condition.type, severity=severity, state="active", message=condition.message))
        elif condition.status != "Unknown" and old.get(condition.type) == bad:
            records.append(AlertRecord(time=now, type=condition.type, severity=severity, state="resolved", message=condition.message))
    return records[-HISTORY_LIMIT:]


def _events(before: Sequence[Condition], after: Sequence[Condition]) -> list[EventToPost]:
    events = []
    for condition in changed_conditions(before, after):
        bad = PROBLEMS.get(condition.type, ("False", "info"))[0]
        problem = condition.status == bad or (condition.type == "Ready" and condition.status != "True")
        events.append(
            EventToPost(
                type="Warning" if problem else "Normal",
                reason=f"{condition.type}{'' if condition.status == 'True' else condition.status}",
                message=f"{condition.reason}: {condition.message}"[:1024],
            )
        )
    return events


def _blocked(obs: MonitorObservations, previous: ModelMonitorStatus) -> dict[str, Verdict]:
    """Every check Unknown for the reason nothing could be queried; last results are kept."""
    since = f"; last good result from {previous.last_success.isoformat()}" if previous.last_success else ""
    verdict = Verdict("Unknown", obs.blocked_reason or "Blocked", f"{obs.blocked_message}{since}")
    return {type_: verdict for type_ in CONDITION_TYPES if type_ != "Healthy"}


def evaluate_monitor(
    spec: ModelMonitorSpec,
    obs: MonitorObservations,
    previous: ModelMonitorStatus,
    *,
    generation: int | None,
    now: datetime,
) -> MonitorEvaluation:
    """The new status of a monitor and the Events its changes deserve."""
    if obs.blocked_reason is not None:
        verdicts = {**_blocked(obs, previous), "Healthy": _health_verdict(obs)}
        return _finish(spec, obs, previous, verdicts, {}, generation=generation, now=now, ok=False)

    performance, latency, errors = _performance(spec, obs, previous)
    label_drift, predicted_share, label = _label_drift(spec, obs, previous)
    quality, quality_failed = _quality(spec, obs, previous, predicted_share)
    features, drift_verdicts, data_drift = _data_drift(spec, obs, previous)
    degradation, concept = _degradation(spec, obs, previous)
    hints = [f"{n} ({drift_verdicts[n].effect:.3g})" for n in rank_by_effect(drift_verdicts)]
    degraded = _degradation_verdict(spec, quality, quality_failed, degradation, hints, previous.last_success)

    # batchSize is optional: many servers do not export it, and its absence is no failure.
    failures = [
        o for name, o in obs.current.items() if not o.ok and name != "batchSize"
    ] + [o for o in (*obs.baseline.values(), obs.quality_series) if o is not None and not o.ok]
    if failures:
        last = f"; last good evaluation at {previous.last_success.isoformat()}" if previous.last_success else ""
        ready = Verdict(
            "Unknown", "QueryFailed",
            f"{len(failures)} of {obs.query_count} queries failed: {failures[0].error.message}{last}",  # type: ignore[union-attr]
        )
    else:
        ready = Verdict("True", "Evaluated", f"{obs.query_count} queries answered for {obs.at.isoformat()}")
    verdicts = {
        "Ready": ready,
        "Healthy": _health_verdict(obs),
        "PerformanceDegraded": degraded,
        "LatencyHigh": latency,
        "ErrorRateHigh": errors,
        "DataDrift": data_drift,
        "LabelDrift": label,
        "ConceptDrift": concept,
    }
    tested = [f for f in features if f.verdict != "InsufficientData"]
    sections = {
        "summary": MonitorSummary(
            version=obs.version,
            accuracy=quality.accuracy if quality else None,
            f1=quality.f1_macro if quality else None,
            latency_p99=performance.latency_p99 if performance else None,
            throughput=performance.throughput if performance else None,
            error_rate=performance.error_rate if performance else None,
            drifted=f"{sum(f.verdict == 'Drift' for f in features)}/{len(tested)}" if features else None,
        ),
        "performance": performance,
        "quality": quality,
        "features": features,
        "label_drift": label_drift,
        "degradation": degradation,
        "queries": obs.query_count,
    }
    return _finish(spec, obs, previous, verdicts, sections, generation=generation, now=now, ok=not failures)


def _finish(
    spec: ModelMonitorSpec,
    obs: MonitorObservations,
    previous: ModelMonitorStatus,
    verdicts: Mapping[str, Verdict],
    sections: Mapping[str, object],
    *,
    generation: int | None,
    now: datetime,
    ok: bool,
) -> MonitorEvaluation:
    conditions = list(previous.conditions)
    for type_ in CONDITION_TYPES:
        v = verdicts[type_]
        conditions = set_condition(conditions, type_, v.status, v.reason, v.message, now=now, generation=generation)
    consecutive = 0 if ok else previous.consecutive_failures + 1
    interval = parse_duration(spec.interval)
    # Failures retry sooner than the interval, backing off: 15s, 30s, 1m, ... up to the interval.
    delay = interval if ok else min(interval, FIRST_RETRY * 2 ** min(consecutive - 1, 16))
    status = previous.model_copy(
        update={
            **sections,
            "observed_generation": generation,
            "conditions": conditions,
            "last_evaluation": now,
            "last_success": now if ok else previous.last_success,
            "next_evaluation": now + delay,
            "consecutive_failures": consecutive,
            "alerts": _alerts(previous.conditions, conditions, previous.alerts, now),
        }
    )
    readable = ModelMonitorStatus.model_validate(_rounded(status.model_dump()))
    return MonitorEvaluation(status=readable, events=_events(previous.conditions, conditions))


def _rounded(value: object) -> object:
    """Figures to six significant digits: what `kubectl describe` shows stays readable, and
    no verdict depends on the digits dropped (verdicts are decided before this)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
