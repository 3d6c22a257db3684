"""Data drift per feature and label drift of a ModelMonitor, from bucket and category counts of
the current window against a baseline window or a reference profile."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from modelpilot.analysis import FeatureDrift, FeatureVerdict, assess_drift, buckets_from_cumulative, drift_from_counts
from modelpilot.api.monitor import FeatureResult, LabelDriftStatus, ModelMonitorSpec, ModelMonitorStatus
from modelpilot.api.profile import NumericalProfile, ReferenceProfile

from ..queries import QueryOutcome, usable_count
from .observations import MonitorObservations
from .verdict import Verdict, failed_verdict, failure, finite, fmt

__all__ = ["FeatureCounts", "assess_data_drift", "assess_label_drift", "profile_counts", "reference_counts", "window_counts"]


@dataclass(frozen=True)
class FeatureCounts:
    kind: Literal["numerical", "categorical"]
    bounds: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    categories: Mapping[str, float] = field(default_factory=dict)
    # Why the window's answer for this feature cannot be used; the other features go on.
    unusable: str | None = None


def _bound(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def window_counts(buckets: QueryOutcome | None, categories: QueryOutcome | None) -> dict[str, FeatureCounts]:
    features: dict[str, FeatureCounts] = {}
    if buckets is not None and buckets.ok:
        grouped: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for s in buckets.samples:
            grouped[s.labels.get("feature", "")].append((s.labels.get("le", "+Inf"), s.value))
        for name, pairs in grouped.items():
            bounds = [_bound(le) for le, _ in pairs]
            if any(b is None or math.isnan(b) for b in bounds):
                bad = next(le for (le, _), b in zip(pairs, bounds) if b is None or math.isnan(b))
                features[name] = FeatureCounts("numerical", unusable=f"bucket bound le={bad!r} is not a number")
                continue
            if not all(usable_count(value) for _, value in pairs):
                features[name] = FeatureCounts(
                    "numerical", unusable="a bucket count is negative, NaN, infinite or past any count"
                )
                continue
            counts = buckets_from_cumulative((b, value) for b, (_, value) in zip(bounds, pairs) if b is not None)
            features[name] = FeatureCounts(
                "numerical", tuple(float(b) for b in counts.upper_bounds), tuple(float(c) for c in counts.counts)
            )
    if categories is not None and categories.ok:
        by_feature: dict[str, dict[str, float]] = defaultdict(dict)
        for s in categories.samples:
            by_feature[s.labels.get("feature", "")][s.labels.get("category", "")] = s.value
        for name, values in by_feature.items():
            usable = all(usable_count(v) for v in values.values())
            features[name] = FeatureCounts(
                "categorical",
                categories=values,
                unusable=None if usable else "a category count is negative, NaN, infinite or past any count",
            )
    return features


def profile_counts(profile: ReferenceProfile) -> dict[str, FeatureCounts]:
    """Counts from a reference profile (see ``modelpilot profile``), shaped like a window's."""
    features: dict[str, FeatureCounts] = {}
    for name, entry in profile.features.items():
        if isinstance(entry, NumericalProfile):
            features[name] = FeatureCounts("numerical", (*entry.upper_bounds, math.inf), tuple(entry.counts))
        else:
            features[name] = FeatureCounts("categorical", categories=dict(entry.counts))
    return features


def reference_counts(spec: ModelMonitorSpec, obs: MonitorObservations) -> dict[str, FeatureCounts] | None:
    """The baseline's counts per feature: the reference profile's, or the baseline window's;
    None when the spec asks for a profile that is not there."""
    if obs.profile is not None:
        return profile_counts(obs.profile)
    if spec.drift.baseline.mlflow_profile:
        return None
    return window_counts(obs.baseline.get("featureBuckets"), obs.baseline.get("featureCategories"))


def _feature_drift(spec: ModelMonitorSpec, reference: FeatureCounts, current: FeatureCounts) -> FeatureDrift | str:
    low, high = spec.drift.psi_bands
    if reference.kind != current.kind:
        return "numerical in one window and categorical in the other"
    if reference.kind == "numerical":
        if reference.bounds != current.bounds:
            return "histogram bucket bounds differ between baseline and current window"
        return drift_from_counts(
            reference.counts,
            current.counts,
            kind="numerical",
            upper_bounds=reference.bounds,
            min_samples=spec.drift.min_samples,
            bands=(low, high),
        )
    names = sorted(set(reference.categories) | set(current.categories))
    return drift_from_counts(
        [reference.categories.get(n, 0.0) for n in names],
        [current.categories.get(n, 0.0) for n in names],
        kind="categorical",
        categories=names,
        min_samples=spec.drift.min_samples,
        bands=(low, high),
    )


def feature_means(sums: QueryOutcome | None, counts: Mapping[str, FeatureCounts]) -> dict[str, float]:
    """Each numerical feature's mean over a window: its values' sum (positive less negative
    magnitudes) over its count (the histogram's observations)."""
    if sums is None or not sums.ok:
        return {}
    signed: dict[str, float] = defaultdict(float)
    unusable = set()
    for s in sums.samples:
        feature = s.labels.get("feature", "")
        if not usable_count(s.value):
            unusable.add(feature)
        signed[feature] += s.value if s.labels.get("sign") == "positive" else -s.value
    means = {}
    for feature, total in signed.items():
        observed = counts.get(feature)
        if feature in unusable or observed is None or observed.kind != "numerical" or observed.unusable:
            continue
        n = sum(observed.counts)
        if n > 0:
            means[feature] = total / n
    return means


def _change_percent(reference: float | None, current: float | None) -> float | None:
    if reference is None or current is None or reference == 0:
        return None
    return finite((current - reference) / abs(reference) * 100)


def _feature_result(
    name: str,
    drift: FeatureDrift | None,
    verdict: FeatureVerdict | None,
    note: str,
    means: tuple[float | None, float | None] = (None, None),
) -> FeatureResult:
    reference_mean, current_mean = (finite(m) for m in means)
    averages = {
        "reference_mean": reference_mean,
        "current_mean": current_mean,
        "mean_change_percent": _change_percent(reference_mean, current_mean),
    }
    if drift is None or verdict is None:
        return FeatureResult(name=name, kind="numerical", verdict="InsufficientData", test=note or None, **averages)
    return FeatureResult(
        name=name,
        kind=drift.kind,
        verdict=verdict.verdict,
        psi=finite(drift.psi),
        psi_expected=finite(drift.psi_expected),
        psi_band=drift.psi_band,
        ks=finite(drift.ks) if drift.ks is not None else None,
        js=finite(drift.js),
        wasserstein=finite(drift.wasserstein) if drift.wasserstein is not None else None,
        chi2=finite(drift.chi2) if drift.chi2 is not None else None,
        pvalue=finite(drift.pvalue),
        corrected_pvalue=finite(verdict.corrected_pvalue),
        test=drift.test if drift.outcome == "Ok" else f"{drift.test} ({drift.outcome})",
        reference_samples=drift.n_reference,
        current_samples=drift.n_current,
        unseen_categories=list(drift.unseen_categories),
        ks_pvalue=finite(drift.ks_pvalue) if drift.ks_pvalue is not None else None,
        **averages,
    )


def assess_data_drift(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[list[FeatureResult], dict[str, FeatureVerdict], Verdict]:
    if not spec.drift.enabled:
        return [], {}, Verdict("False", "Disabled", "data drift checks are disabled (spec.drift.enabled)")
    current_q = (obs.current.get("featureBuckets"), obs.current.get("featureCategories"))
    baseline_q = (obs.baseline.get("featureBuckets"), obs.baseline.get("featureCategories"))
    failed = failure((*current_q, *baseline_q))
    if failed is not None:
        return previous.features, {}, failed_verdict(failed, previous.last_success)
    reference = reference_counts(spec, obs)
    if reference is None:
        return previous.features, {}, Verdict("Unknown", "NoReferenceProfile", "no reference profile")
    current = window_counts(*current_q)
    # A profile holds no sums: its features have no baseline mean.
    reference_means = {} if obs.profile is not None else feature_means(obs.baseline.get("featureSums"), reference)
    current_means = feature_means(obs.current.get("featureSums"), current)
    names = sorted(set(reference) | set(current))
    if spec.drift.features:
        names = [n for n in spec.drift.features]
    drifts: dict[str, FeatureDrift] = {}
    notes: dict[str, str] = {}
    for name in names:
        if name not in current or name not in reference:
            notes[name] = f"no data in the {'current window' if name not in current else 'baseline'}"
            continue
        unusable = current[name].unusable or reference[name].unusable
        if unusable is not None:
            notes[name] = unusable
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
    results = [
        _feature_result(n, drifts.get(n), verdicts.get(n), notes.get(n, ""), (reference_means.get(n), current_means.get(n)))
        for n in names
    ]
    drifted = [r for r in results if r.verdict == "Drift"]
    tested = [r for r in results if r.verdict != "InsufficientData"]
    if not names:
        return results, verdicts, Verdict("Unknown", "NoData", "no feature metrics (model_feature_*) in either window")
    if drifted:
        ranked = sorted(drifted, key=lambda r: -(verdicts[r.name].effect or 0.0))
        detail = ", ".join(f"{r.name} ({spec.drift.effect_size} {fmt(verdicts[r.name].effect)}, {r.psi_band})" for r in ranked)
        return results, verdicts, Verdict("True", "FeaturesDrifted", f"{len(drifted)}/{len(names)} features drifted: {detail}")
    if not tested:
        return (
            results,
            verdicts,
            Verdict("Unknown", "InsufficientData", f"fewer than {spec.drift.min_samples} samples for every feature"),
        )
    skipped = len(names) - len(tested)
    extra = f"; {skipped} with too little data" if skipped else ""
    return results, verdicts, Verdict("False", "NoDrift", f"0/{len(tested)} tested features drifted{extra}")


def _shares(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total > 0 else {}


def assess_label_drift(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[LabelDriftStatus | None, dict[str, float], Verdict]:
    current_q = obs.current.get("predictions")
    current = {s.labels.get("class", ""): s.value for s in current_q.samples} if current_q and current_q.ok else {}
    if not spec.label_drift.enabled:
        return None, _shares(current), Verdict("False", "Disabled", "label drift checks are disabled")
    baseline_q = obs.baseline.get("predictions")
    failed = failure((current_q, baseline_q))
    if failed is not None:
        return previous.label_drift, _shares(current), failed_verdict(failed, previous.last_success)
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
        {"predictions": drift},
        alpha=spec.label_drift.alpha,
        correction="none",
        effect_size="psi",
        effect_threshold=spec.label_drift.effect_threshold,
    )["predictions"]
    ref_share, cur_share = _shares(reference), _shares(current)
    shift = {n: round(cur_share.get(n, 0.0) - ref_share.get(n, 0.0), 6) for n in names}
    status = LabelDriftStatus(
        verdict=verdict.verdict,
        pvalue=finite(drift.pvalue),
        psi=finite(drift.psi),
        class_shift=shift,
        reference_counts={n: round(v, 6) for n, v in sorted(reference.items())},
        current_counts={n: round(v, 6) for n, v in sorted(current.items())},
    )
    moved = ", ".join(f"{n} {v:+.1%}" for n, v in sorted(shift.items(), key=lambda kv: -abs(kv[1]))[:3])
    if verdict.drifted is None:
        return status, cur_share, Verdict("Unknown", "InsufficientData", verdict.reason)
    if verdict.drifted:
        return (
            status,
            cur_share,
            Verdict(
                "True",
                "ClassDistributionShifted",
                f"prediction classes shifted (PSI {fmt(drift.psi)}, p={fmt(drift.pvalue)}): {moved}",
            ),
        )
    return (
        status,
        cur_share,
        Verdict("False", "NoDrift", f"prediction classes stable (PSI {fmt(drift.psi)}, p={fmt(drift.pvalue)})"),
    )
