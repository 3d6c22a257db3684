"""Model quality from late labels, and its trend: accuracy, precision, recall and F1 from the
feedback confusion matrix; Mann-Kendall with Sen's slope and Page-Hinkley change points over
the quality series; the PerformanceDegraded verdict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from modelpilot.analysis import (
    adwin,
    adwin_batches,
    confusion_from_counts,
    mann_kendall,
    page_hinkley,
    quality_from_confusion,
)
from modelpilot.api.monitor import (
    ClassQuality,
    DegradationStatus,
    ModelMonitorSpec,
    ModelMonitorStatus,
    QualityStatus,
)

from ..queries import QueryOutcome
from .observations import MonitorObservations
from .verdict import Verdict, failed_verdict, finite, fmt

__all__ = ["assess_degradation", "degradation_verdict", "assess_quality"]


def _confusion_rows(samples: Iterable[tuple[Mapping[str, str], float]]) -> list[tuple[str, str, float]]:
    return [(labels.get("predicted", ""), labels.get("actual", ""), value) for labels, value in samples]


def assess_quality(
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


def degradation_verdict(
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
            "True",
            "DecliningTrend",
            f"{degradation.metric} declines {fmt(degradation.sen_slope)}/day over {spec.degradation.horizon} "
            f"(Mann-Kendall p={fmt(degradation.pvalue)}, change {fmt(degradation.change)}){cause}",
        )
    if failed is not None:
        return failed_verdict(failed, last_good)
    if quality is None:
        return Verdict("Unknown", "NoQualityData", "no model_feedback_total query for this preset")
    if quality.accuracy is None:
        return Verdict(
            "Unknown",
            "InsufficientData",
            f"{quality.samples} labelled predictions over {spec.quality.window}, need {spec.quality.min_samples}",
        )
    summary = ", ".join(
        f"{m} {fmt(_quality_value(quality, m))}" for m in ("accuracy", "f1") if _quality_value(quality, m) is not None
    )
    return Verdict("False", "WithinThreshold", f"{summary} over {spec.quality.window} ({quality.samples} labels)")


@dataclass(frozen=True)
class _Series:
    """The followed metric per step with enough labels, and each step's right and labelled predictions."""

    times: list[float]
    values: list[float]
    correct: list[float]
    labelled: list[float]


def _quality_series(spec: ModelMonitorSpec, outcome: QueryOutcome) -> _Series:
    """Per-step quality metric from (predicted, actual) series; steps with too few labels are left out."""
    by_time: dict[float, list[tuple[str, str, float]]] = defaultdict(list)
    for series in outcome.series:
        for t, v in series.points:
            by_time[t].append((series.labels.get("predicted", ""), series.labels.get("actual", ""), v))
    found = _Series([], [], [], [])
    for t in sorted(by_time):
        matrix, labels = confusion_from_counts(by_time[t])
        quality = quality_from_confusion(matrix, labels, min_samples=spec.quality.min_samples)
        if quality is None:
            continue
        value = {
            "accuracy": quality.accuracy,
            "precision": quality.precision_macro,
            "recall": quality.recall_macro,
            "f1": quality.f1_macro,
        }[spec.degradation.metric]
        found.times.append(t)
        found.values.append(value)
        found.correct.append(float(np.trace(matrix)))
        found.labelled.append(float(np.sum(matrix)))
    return found


@dataclass(frozen=True)
class _Shift:
    """A downward shift: where it was found, and the metric before and after it."""

    index: int
    before: float
    after: float


def _shifts(spec: ModelMonitorSpec, series: _Series) -> list[_Shift]:
    """The downward shifts the spec's detector finds in the series."""
    degradation = spec.degradation
    if degradation.detector == "adwin":
        if degradation.metric == "accuracy":
            # Every label's outcome, right or wrong: the stream ADWIN was made for.
            changes = adwin_batches(series.correct, series.labelled, series.correct, delta=degradation.adwin_delta)
        else:
            changes = adwin(series.values, delta=degradation.adwin_delta)
        return [_Shift(c.index, c.before, c.after) for c in changes if c.magnitude < 0]
    alarms = page_hinkley(series.values, delta=degradation.delta, threshold=degradation.threshold, direction="decrease")
    # Page-Hinkley says when, not from what to what: the means of the segments either side.
    edges = [0, *alarms, len(series.values)]
    return [
        _Shift(i, float(np.mean(series.values[edges[k] : i])), float(np.mean(series.values[i : edges[k + 2]])))
        for k, i in enumerate(alarms)
    ]


def assess_degradation(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[DegradationStatus | None, Verdict]:
    if not spec.degradation.enabled:
        return None, Verdict("False", "Disabled", "degradation checks are disabled")
    outcome = obs.quality_series
    if outcome is None:
        return None, Verdict("Unknown", "NoQualityData", "no model_feedback_total query for this preset")
    if not outcome.ok:
        return previous.degradation, failed_verdict(outcome, previous.last_success)
    series = _quality_series(spec, outcome)
    metric, detector = spec.degradation.metric, spec.degradation.detector
    days = [t / 86400.0 for t in series.times]
    trend = mann_kendall(series.values, days, alpha=spec.degradation.alpha)
    if trend.direction == "insufficient":
        status = DegradationStatus(metric=metric, points=len(series.values), direction="insufficient", detector=detector)
        return status, Verdict(
            "Unknown",
            "InsufficientData",
            f"{len(series.values)} {spec.degradation.step} points of {metric} with enough labels over {spec.degradation.horizon}",
        )
    shifts = _shifts(spec, series)
    change_times = [datetime.fromtimestamp(series.times[s.index], UTC) for s in shifts]
    last = shifts[-1] if shifts else None
    status = DegradationStatus(
        metric=metric,
        points=len(series.values),
        direction=trend.direction,
        tau=finite(trend.tau),
        pvalue=finite(trend.pvalue),
        sen_slope=finite(trend.slope),
        change=finite(trend.change),
        change_points=change_times,
        detector=detector,
        before=finite(last.before) if last else None,
        after=finite(last.after) if last else None,
        magnitude=finite(last.after - last.before) if last else None,
    )
    name = "ADWIN" if detector == "adwin" else "Page-Hinkley"
    if last is not None:
        when = ", ".join(t.date().isoformat() for t in change_times)
        moved = f"{fmt(last.before)} -> {fmt(last.after)}"
        return status, Verdict("True", "ChangePointDetected", f"{metric} shifted down ({name}, {moved}) at {when}")
    return status, Verdict("False", "NoChangePoint", f"no downward shift of {metric} over {spec.degradation.horizon} ({name})")
