"""Data quality of a monitor's features (missing values, out-of-range values, unseen categories)
and the drift details beside each test (means, KS p-value, prediction counts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from modelpilot.api import MODEL_MONITOR, load_spec
from modelpilot.api.monitor import DataQualityStatus, ModelMonitorStatus
from modelpilot.api.profile import CategoricalProfile, NumericalProfile, ReferenceProfile
from modelpilot.reconcile.monitor import decide_monitor
from modelpilot.reconcile.monitor.data_quality import assess_data_quality
from modelpilot.reconcile.monitor.observations import MonitorObservations
from modelpilot.reconcile.queries import QueryFailed, QueryOutcome, Sample

NOW = datetime(2026, 3, 1, tzinfo=UTC)
BOUNDS = [-2.0, -1.0, 0.0, 1.0, 2.0, float("inf")]


def spec(**fields: object):
    return load_spec(MODEL_MONITOR, {"model": {"name": "m"}, "prometheus": {"url": "http://prometheus:9090"}, **fields})


def buckets(feature: str, counts: list[float]) -> list[Sample]:
    """Cumulative ``le`` samples of per-bucket ``counts``."""
    cumulative = np.cumsum(counts)
    return [Sample({"feature": feature, "le": "+Inf" if np.isinf(b) else str(b)}, float(c)) for b, c in zip(BOUNDS, cumulative)]


def categories(feature: str, counts: dict[str, float]) -> list[Sample]:
    return [Sample({"feature": feature, "category": k}, v) for k, v in counts.items()]


def observations(
    *,
    current_buckets: list[float],
    baseline_buckets: list[float],
    current_categories: dict[str, float],
    baseline_categories: dict[str, float],
    missing: dict[str, float],
) -> MonitorObservations:
    return MonitorObservations(
        at=NOW,
        version="1",
        current={
            "featureBuckets": QueryOutcome("q", samples=tuple(buckets("x", current_buckets))),
            "featureCategories": QueryOutcome("q", samples=tuple(categories("c", current_categories))),
            "featureMissing": QueryOutcome("q", samples=tuple(Sample({"feature": f}, v) for f, v in missing.items())),
        },
        baseline={
            "featureBuckets": QueryOutcome("q", samples=tuple(buckets("x", baseline_buckets))),
            "featureCategories": QueryOutcome("q", samples=tuple(categories("c", baseline_categories))),
        },
    )


CLEAN = {
    "current_buckets": [0, 100, 400, 400, 100, 0],
    "baseline_buckets": [0, 100, 400, 400, 100, 0],
    "current_categories": {"a": 600, "b": 400},
    "baseline_categories": {"a": 500, "b": 500},
    "missing": {"x": 10, "c": 0},
}


def by_name(status: DataQualityStatus):
    return {f.name: f for f in status.features}


def test_clean_features_are_within_limits() -> None:
    status, verdict = assess_data_quality(spec(), observations(**CLEAN), ModelMonitorStatus())
    assert (verdict.status, verdict.reason) == ("False", "WithinLimits")
    x = by_name(status)["x"]
    assert x.values == 1010 and x.missing_rate == pytest.approx(10 / 1010)
    assert x.out_of_range_rate == 0 and x.unseen_rate is None and x.verdict == "Ok"
    assert by_name(status)["c"].unseen_rate == 0


def test_missing_values_above_the_limit_name_the_feature_and_the_figure() -> None:
    obs = observations(**{**CLEAN, "missing": {"x": 100, "c": 0}})  # 100 of 1100: 9.1%
    status, verdict = assess_data_quality(spec(), obs, ModelMonitorStatus())
    assert (verdict.status, verdict.reason) == ("True", "DataQualityProblems")
    assert "x: 9.1% missing (limit 5.0%)" in verdict.message
    assert by_name(status)["x"].missing_rate == pytest.approx(100 / 1100) and by_name(status)["x"].verdict == "Problem"
    # The limit is the spec's.
    _, relaxed = assess_data_quality(spec(dataQuality={"missingRate": 0.1}), obs, ModelMonitorStatus())
    assert relaxed.status == "False"


def test_values_outside_the_baselines_occupied_buckets_are_out_of_range() -> None:
    # The baseline never had values at or below -2 nor above 2; now 15 and 25 of 1000 do.
    obs = observations(**{**CLEAN, "current_buckets": [15, 100, 380, 380, 100, 25]})
    status, verdict = assess_data_quality(spec(), obs, ModelMonitorStatus())
    assert by_name(status)["x"].out_of_range_rate == pytest.approx(40 / 1000)
    assert verdict.status == "True" and "x: 4.0% outside the baseline's range (limit 1.0%)" in verdict.message
    # Counts in the baseline's own outer buckets are in range.
    inside = observations(**{**CLEAN, "current_buckets": [0, 300, 200, 200, 300, 0]})
    assert by_name(assess_data_quality(spec(), inside, ModelMonitorStatus())[0])["x"].out_of_range_rate == 0


def test_categories_the_baseline_never_saw_are_unseen() -> None:
    obs = observations(**{**CLEAN, "current_categories": {"a": 600, "b": 370, "z": 30}})
    status, verdict = assess_data_quality(spec(), obs, ModelMonitorStatus())
    assert by_name(status)["c"].unseen_rate == pytest.approx(0.03)
    assert verdict.status == "True" and "c: 3.0% in unseen categories" in verdict.message


def test_a_reference_profile_is_the_range_and_the_categories_known() -> None:
    profile = ReferenceProfile(
        rows=1000,
        features={
            "x": NumericalProfile(upper_bounds=BOUNDS[:-1], counts=[0, 0, 500, 500, 0, 0]),
            "c": CategoricalProfile(counts={"a": 1000}),
        },
    )
    obs = replace(observations(**CLEAN), baseline={}, profile=profile)
    status, verdict = assess_data_quality(
        spec(drift={"baseline": {"mlflowProfile": True}}, mlflow={"trackingUri": "http://mlflow:5000"}), obs, ModelMonitorStatus()
    )
    figures = by_name(status)
    assert figures["x"].out_of_range_rate == pytest.approx(200 / 1000)
    assert figures["c"].unseen_rate == pytest.approx(0.4)
    assert verdict.status == "True"


def test_too_few_values_is_insufficient_data_never_a_verdict() -> None:
    small = {**CLEAN, "current_buckets": [0, 10, 20, 20, 10, 0], "current_categories": {"z": 50}, "missing": {"x": 30}}
    status, verdict = assess_data_quality(spec(), observations(**small), ModelMonitorStatus())
    assert (verdict.status, verdict.reason) == ("Unknown", "InsufficientData")
    assert {f.verdict for f in status.features} == {"InsufficientData"}


def test_a_failed_query_keeps_the_last_figures_and_is_unknown() -> None:
    good, _ = assess_data_quality(spec(), observations(**CLEAN), ModelMonitorStatus())
    obs = observations(**CLEAN)
    error = QueryOutcome("q", error=QueryFailed("Timeout", "slow", "q"))
    obs = replace(obs, current={**obs.current, "featureMissing": error})
    kept, verdict = assess_data_quality(spec(), obs, ModelMonitorStatus(data_quality=good))
    assert kept == good and (verdict.status, verdict.reason) == ("Unknown", "QueryFailed")


def test_disabled_checks_are_false_and_the_monitor_carries_the_condition() -> None:
    _, verdict = assess_data_quality(spec(dataQuality={"enabled": False}), observations(**CLEAN), ModelMonitorStatus())
    assert (verdict.status, verdict.reason) == ("False", "Disabled")
    decided = decide_monitor(spec(), ModelMonitorStatus(), observations(**CLEAN), generation=1, now=NOW).status
    condition = next(c for c in decided.conditions if c.type == "DataQuality")
    assert (condition.status, condition.reason) == ("False", "WithinLimits")
    assert decided.data_quality is not None


# -- drift details --------------------------------------------------------------------------------


def sums(feature: str, positive: float, negative: float) -> list[Sample]:
    return [
        Sample({"feature": feature, "sign": "positive"}, positive),
        Sample({"feature": feature, "sign": "negative"}, negative),
    ]


def test_means_and_their_change_come_from_the_signed_sums_over_the_counts() -> None:
    obs = observations(**CLEAN)
    obs = replace(
        obs,
        current={**obs.current, "featureSums": QueryOutcome("q", samples=tuple(sums("x", 700.0, 200.0)))},
        baseline={**obs.baseline, "featureSums": QueryOutcome("q", samples=tuple(sums("x", 450.0, 200.0)))},
    )
    status = decide_monitor(spec(), ModelMonitorStatus(), obs, generation=1, now=NOW).status
    x = next(f for f in status.features if f.name == "x")
    # 1000 observations each (the buckets): means 0.5 and 0.25, a change of +100%.
    assert (x.reference_mean, x.current_mean, x.mean_change_percent) == (0.25, 0.5, 100.0)
    assert x.ks_pvalue is not None and 0 < x.ks_pvalue <= 1
    c = next(f for f in status.features if f.name == "c")
    assert c.reference_mean is None and c.ks_pvalue is None


def test_prediction_counts_per_class_sit_beside_the_shares() -> None:
    obs = observations(**CLEAN)
    obs = replace(
        obs,
        current={
            **obs.current,
            "predictions": QueryOutcome("q", samples=(Sample({"class": "a"}, 700.0), Sample({"class": "b"}, 300.0))),
        },
        baseline={
            **obs.baseline,
            "predictions": QueryOutcome("q", samples=(Sample({"class": "a"}, 500.0), Sample({"class": "b"}, 500.0))),
        },
    )
    label = decide_monitor(spec(), ModelMonitorStatus(), obs, generation=1, now=NOW).status.label_drift
    assert label.current_counts == {"a": 700.0, "b": 300.0} and label.reference_counts == {"a": 500.0, "b": 500.0}
    assert label.class_shift == {"a": pytest.approx(0.2), "b": pytest.approx(-0.2)}
