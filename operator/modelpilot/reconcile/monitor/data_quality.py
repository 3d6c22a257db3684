"""Data quality of a ModelMonitor's features over the drift window: missing values, numerical
values outside the baseline's range, and categories the baseline never saw."""

from __future__ import annotations

from collections.abc import Mapping

from modelpilot.api.monitor import DataQualityStatus, FeatureQuality, ModelMonitorSpec, ModelMonitorStatus

from ..queries import QueryOutcome, usable_count
from .drift import FeatureCounts, reference_counts, window_counts
from .observations import MonitorObservations
from .summary import percent_text
from .verdict import Verdict, failed_verdict, failure

__all__ = ["assess_data_quality", "out_of_range", "unseen"]


def _missing(outcome: QueryOutcome | None) -> dict[str, float | None]:
    """Missing values per feature; None for a feature whose count is unusable."""
    if outcome is None or not outcome.ok:
        return {}
    return {s.labels.get("feature", ""): s.value if usable_count(s.value) else None for s in outcome.samples}


def out_of_range(reference: FeatureCounts, current: FeatureCounts) -> float | None:
    """Current observations in buckets below the reference's lowest non-empty bucket or above its
    highest; None when the two do not share bucket bounds or the reference is empty."""
    if reference.kind != "numerical" or current.kind != "numerical" or reference.bounds != current.bounds:
        return None
    occupied = [i for i, count in enumerate(reference.counts) if count > 0]
    if not occupied:
        return None
    return sum(current.counts[: occupied[0]]) + sum(current.counts[occupied[-1] + 1 :])


def unseen(reference: FeatureCounts, current: FeatureCounts) -> float | None:
    """Current observations in categories the reference never saw; None without a reference."""
    if reference.kind != "categorical" or current.kind != "categorical" or not any(reference.categories.values()):
        return None
    return sum(count for name, count in current.categories.items() if reference.categories.get(name, 0) <= 0)


def _observed(counts: FeatureCounts | None) -> float:
    if counts is None or counts.unusable:
        return 0.0
    return sum(counts.counts) if counts.kind == "numerical" else sum(counts.categories.values())


def _feature_quality(
    spec: ModelMonitorSpec,
    name: str,
    missing: float | None,
    current: FeatureCounts | None,
    reference: FeatureCounts | None,
) -> tuple[FeatureQuality, list[str]]:
    """One feature's figures, and what in them passes a limit (in words)."""
    limits = spec.data_quality
    observed = _observed(current)
    values = observed + (missing or 0.0)
    if missing is None or (current is not None and current.unusable is not None) or values < limits.min_samples:
        return FeatureQuality(name=name, values=round(values), verdict="InsufficientData"), []
    outside = out_of_range(reference, current) if reference is not None and current is not None else None
    novel = unseen(reference, current) if reference is not None and current is not None else None
    rates = {
        "missing_rate": (missing or 0.0) / values,
        "out_of_range_rate": outside / observed if outside is not None and observed else None,
        "unseen_rate": novel / observed if novel is not None and observed else None,
    }
    found = []
    for field, limit, what in (
        ("missing_rate", limits.missing_rate, "missing"),
        ("out_of_range_rate", limits.out_of_range_rate, "outside the baseline's range"),
        ("unseen_rate", limits.unseen_rate, "in unseen categories"),
    ):
        rate = rates[field]
        if rate is not None and rate > limit:
            found.append(f"{name}: {percent_text(rate)} {what} (limit {percent_text(limit)})")
    quality = FeatureQuality(name=name, values=round(values), **rates, verdict="Problem" if found else "Ok")
    return quality, found


def assess_data_quality(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[DataQualityStatus | None, Verdict]:
    if not spec.data_quality.enabled:
        return None, Verdict("False", "Disabled", "data quality checks are disabled (spec.dataQuality.enabled)")
    names = ("featureMissing", "featureBuckets", "featureCategories")
    current_q = [obs.current.get(n) for n in names]
    baseline_q = [obs.baseline.get(n) for n in names[1:]]
    failed = failure((*current_q, *baseline_q))
    if failed is not None:
        return previous.data_quality, failed_verdict(failed, previous.last_success)
    missing = _missing(current_q[0])
    current = window_counts(current_q[1], current_q[2])
    reference: Mapping[str, FeatureCounts] = reference_counts(spec, obs) or {}
    features = sorted(set(missing) | set(current))
    if spec.drift.features:
        features = list(spec.drift.features)
    if not features:
        return DataQualityStatus(), Verdict("Unknown", "NoData", "no feature metrics (model_feature_*) in the window")
    results, problems = [], []
    for name in features:
        quality, found = _feature_quality(spec, name, missing.get(name, 0.0), current.get(name), reference.get(name))
        results.append(quality)
        problems.extend(found)
    status = DataQualityStatus(features=results)
    judged = [r for r in results if r.verdict != "InsufficientData"]
    if problems:
        return status, Verdict("True", "DataQualityProblems", f"over {spec.drift.window}: {'; '.join(problems)}")
    if not judged:
        return status, Verdict(
            "Unknown", "InsufficientData", f"fewer than {spec.data_quality.min_samples} values for every feature"
        )
    skipped = len(results) - len(judged)
    extra = f"; {skipped} with too little data" if skipped else ""
    return status, Verdict("False", "WithinLimits", f"{len(judged)} features within their data quality limits{extra}")
