"""ModelMonitor evaluation from synthetic observations: conditions, kept results, backoff, events."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from modelpilot.api import MODEL_MONITOR, load_spec
from modelpilot.api.monitor import ModelMonitorStatus
from modelpilot.reconcile import find_condition
from modelpilot.reconcile.monitor import DeploymentState, MonitorObservations, decide_monitor, is_due
from modelpilot.reconcile.queries import QueryFailed, QueryOutcome, Sample, Series

NOW = datetime(2026, 3, 1, tzinfo=UTC)
BOUNDS = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, float("inf")]
LATENCY_BOUNDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, float("inf")]
SPEC = load_spec(
    MODEL_MONITOR,
    {
        "model": {"name": "m", "version": {"fixed": "1"}},
        "deployment": {"name": "m"},
        "prometheus": {"url": "http://prometheus:9090"},
        "performance": {"latencyP99": 0.25, "errorRate": 0.02},
        "quality": {"minSamples": 100, "accuracy": 0.9},
        "degradation": {"horizon": "30d", "step": "1d"},
    },
)


def numeric_buckets(feature: str, n: int, shift: float, rng: np.random.Generator) -> list[Sample]:
    cdf = stats.norm(shift, 1).cdf(np.array(BOUNDS))
    counts = rng.multinomial(n, np.diff(cdf, prepend=0.0))
    return [
        Sample({"feature": feature, "le": "+Inf" if np.isinf(b) else str(b)}, float(c)) for b, c in zip(BOUNDS, np.cumsum(counts))
    ]


def categories(feature: str, n: int, probabilities: dict[str, float], rng: np.random.Generator) -> list[Sample]:
    counts = rng.multinomial(n, list(probabilities.values()))
    return [Sample({"feature": feature, "category": k}, float(c)) for k, c in zip(probabilities, counts)]


def feedback(n: int, accuracy: float) -> list[Sample]:
    right = round(n * accuracy)
    return [
        Sample({"predicted": "a", "actual": "a"}, right / 2),
        Sample({"predicted": "b", "actual": "b"}, right / 2),
        Sample({"predicted": "a", "actual": "b"}, (n - right) / 2),
        Sample({"predicted": "b", "actual": "a"}, (n - right) / 2),
    ]


def observations(
    *,
    shift: float = 0.0,
    category_shift: bool = False,
    accuracy: float = 0.95,
    slow: bool = False,
    errors: float = 0.0,
    accuracy_trend: float = 0.0,
    seed: int = 1,
    ready: int = 2,
) -> MonitorObservations:
    rng = np.random.default_rng(seed)
    latency_share = np.array([0.2, 0.3, 0.3, 0.15, 0.04, 0.01, 0.0, 0.0])
    if slow:
        latency_share = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.3, 0.05, 0.0])
    latency = [Sample({"le": str(b)}, float(c)) for b, c in zip(LATENCY_BOUNDS, np.cumsum(latency_share * 1000))]
    base_cats = {"x": 0.5, "y": 0.3, "z": 0.2}
    cur_cats = {"x": 0.2, "y": 0.3, "z": 0.5} if category_shift else base_cats
    days = [NOW.timestamp() - 86400 * (29 - i) for i in range(30)]
    by_pair: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for i, t in enumerate(days):
        for s in feedback(1000, min(0.99, accuracy - accuracy_trend * (i - 29) / 29)):
            by_pair.setdefault((s.labels["predicted"], s.labels["actual"]), []).append((t, s.value))
    series = [Series({"predicted": p, "actual": a}, tuple(points)) for (p, a), points in by_pair.items()]
    current = {
        "latencyBuckets": QueryOutcome("q", samples=tuple(latency)),
        "latencySum": QueryOutcome("q", samples=(Sample({}, 60.0),)),
        "requests": QueryOutcome(
            "q", samples=(Sample({"status": "success"}, 1000 * (1 - errors)), Sample({"status": "error"}, 1000 * errors))
        ),
        "feedback": QueryOutcome("q", samples=tuple(feedback(2000, accuracy))),
        "predictions": QueryOutcome("q", samples=(Sample({"class": "a"}, 5000.0), Sample({"class": "b"}, 5000.0))),
        "featureBuckets": QueryOutcome(
            "q", samples=tuple(numeric_buckets("f1", 5000, shift, rng) + numeric_buckets("f2", 5000, 0.0, rng))
        ),
        "featureCategories": QueryOutcome("q", samples=tuple(categories("c1", 5000, cur_cats, rng))),
    }
    baseline = {
        "predictions": QueryOutcome("q", samples=(Sample({"class": "a"}, 5000.0), Sample({"class": "b"}, 5000.0))),
        "featureBuckets": QueryOutcome(
            "q", samples=tuple(numeric_buckets("f1", 5000, 0.0, rng) + numeric_buckets("f2", 5000, 0.0, rng))
        ),
        "featureCategories": QueryOutcome("q", samples=tuple(categories("c1", 5000, base_cats, rng))),
    }
    return MonitorObservations(
        at=NOW,
        version="1",
        current=current,
        baseline=baseline,
        quality_series=QueryOutcome("q", series=tuple(series)),
        deployment=DeploymentState(name="m", ready=ready, desired=2),
    )


def failed(obs: MonitorObservations) -> MonitorObservations:
    error = QueryFailed("Unreachable", "cannot connect to Prometheus at http://prometheus:9090", "q")
    return MonitorObservations(
        at=obs.at,
        version=obs.version,
        current={k: QueryOutcome("q", error=error) for k in obs.current},
        baseline={k: QueryOutcome("q", error=error) for k in obs.baseline},
        quality_series=QueryOutcome("q", error=error),
        deployment=obs.deployment,
    )


def status_of(result) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in result.status.conditions}


def evaluate(obs: MonitorObservations, previous: ModelMonitorStatus | None = None, now: datetime = NOW):
    return decide_monitor(SPEC, previous or ModelMonitorStatus(), obs, generation=1, now=now)


def test_a_healthy_model_gets_every_condition_false_or_true_as_it_should() -> None:
    result = evaluate(observations())
    assert status_of(result) == {
        "Ready": ("True", "Evaluated"),
        "Healthy": ("True", "ReplicasReady"),
        "PerformanceDegraded": ("False", "WithinThreshold"),
        "LatencyHigh": ("False", "WithinThreshold"),
        "ErrorRateHigh": ("False", "WithinThreshold"),
        "DataDrift": ("False", "NoDrift"),
        "LabelDrift": ("False", "NoDrift"),
        "ConceptDrift": ("False", "NoChangePoint"),
        "DataQuality": ("False", "WithinLimits"),
    }
    status = result.status
    assert status.summary.drifted == "0/3"
    assert status.summary.accuracy == pytest.approx(0.95)
    # The columns' text says the same figures: 95.0%, and p99 (0.13 s) in milliseconds.
    assert status.summary.accuracy_text == "95.0%"
    assert status.summary.latency_p99_text == f"{status.summary.latency_p99 * 1000:.3g}ms"
    assert status.summary.error_rate_text == f"{status.summary.error_rate:.1%}"
    assert status.quality.samples == 2000
    assert status.performance.throughput == pytest.approx(1000 / 300, rel=1e-5)
    assert status.performance.latency_mean == pytest.approx(0.06)
    assert status.consecutive_failures == 0
    assert status.next_evaluation == NOW + timedelta(minutes=5)
    assert status.alerts == []


def test_latency_p99_matches_histogram_quantile() -> None:
    status = evaluate(observations()).status
    # 99% of 1000 = 990 falls in the (0.1, 0.25] bucket holding ranks 950..990.
    assert status.performance.latency_p99 == pytest.approx(0.1 + 0.15 * (990 - 950) / 40, rel=1e-5)


def test_strong_feature_drift_sets_datadrift_and_ranks_it_first() -> None:
    result = evaluate(observations(shift=1.0, category_shift=True))
    conditions = {c.type: c for c in result.status.conditions}
    assert conditions["DataDrift"].status == "True"
    assert conditions["DataDrift"].message.startswith("2/3 features drifted: f1")
    verdicts = {f.name: f.verdict for f in result.status.features}
    assert verdicts == {"c1": "Drift", "f1": "Drift", "f2": "NoDrift"}
    assert result.status.summary.drifted == "2/3"
    f1 = next(f for f in result.status.features if f.name == "f1")
    assert f1.psi_band == "significant" and f1.corrected_pvalue < 0.05


def test_slow_latency_and_errors_raise_their_conditions() -> None:
    conditions = status_of(evaluate(observations(slow=True, errors=0.05)))
    assert conditions["LatencyHigh"] == ("True", "AboveThreshold")
    assert conditions["ErrorRateHigh"] == ("True", "AboveThreshold")


def test_low_accuracy_degrades_with_root_cause_hints() -> None:
    result = evaluate(observations(accuracy=0.8, shift=1.0))
    degraded = find_condition(result.status.conditions, "PerformanceDegraded")
    assert (degraded.status, degraded.reason) == ("True", "BelowThreshold")
    assert "accuracy 0.800 < 0.900" in degraded.message
    assert "drifted features by effect size: f1" in degraded.message


def test_declining_accuracy_is_a_trend_and_a_change_point() -> None:
    result = evaluate(observations(accuracy=0.93, accuracy_trend=0.15))
    conditions = status_of(result)
    assert conditions["PerformanceDegraded"] == ("True", "DecliningTrend")
    assert conditions["ConceptDrift"] == ("True", "ChangePointDetected")
    assert result.status.degradation.direction == "decreasing"
    assert result.status.degradation.sen_slope < 0


def test_too_few_labels_is_unknown_never_false() -> None:
    obs = observations()
    thin = MonitorObservations(
        at=obs.at,
        version=obs.version,
        current={**obs.current, "feedback": QueryOutcome("q", samples=tuple(feedback(40, 0.5)))},
        baseline=obs.baseline,
        quality_series=QueryOutcome("q", series=()),
        deployment=obs.deployment,
    )
    conditions = status_of(evaluate(thin))
    assert conditions["PerformanceDegraded"] == ("Unknown", "InsufficientData")
    assert conditions["ConceptDrift"] == ("Unknown", "InsufficientData")


def test_prometheus_down_keeps_results_reports_unknown_and_backs_off() -> None:
    good = evaluate(observations(shift=1.0)).status
    down = evaluate(failed(observations()), good, NOW + timedelta(minutes=5))
    conditions = status_of(down)
    assert conditions["Ready"] == ("Unknown", "QueryFailed")
    for type_ in ("DataDrift", "LatencyHigh", "ErrorRateHigh", "LabelDrift", "ConceptDrift", "PerformanceDegraded"):
        assert conditions[type_] == ("Unknown", "QueryFailed"), type_
    assert conditions["Healthy"] == ("True", "ReplicasReady")
    assert down.status.features == good.features
    assert down.status.quality == good.quality
    assert down.status.last_success == good.last_success
    assert down.status.next_evaluation == NOW + timedelta(minutes=5, seconds=15)
    again = evaluate(failed(observations()), down.status, NOW + timedelta(minutes=6))
    assert again.status.consecutive_failures == 2
    assert again.status.next_evaluation == NOW + timedelta(minutes=6, seconds=30)

    recovered = evaluate(observations(shift=1.0), again.status, NOW + timedelta(minutes=7))
    assert status_of(recovered)["DataDrift"] == ("True", "FeaturesDrifted")
    assert recovered.status.consecutive_failures == 0


def test_events_only_on_transitions_and_alerts_resolve() -> None:
    first = evaluate(observations(shift=1.0))
    assert {e.reason for e in first.events} >= {"DataDrift", "Ready"}
    assert next(e for e in first.events if e.reason == "DataDrift").type == "Warning"
    repeat = evaluate(observations(shift=1.0, seed=2), first.status, NOW + timedelta(minutes=5))
    assert repeat.events == []
    cleared = evaluate(observations(), repeat.status, NOW + timedelta(minutes=10))
    assert [e.reason for e in cleared.events] == ["DataDriftFalse"]
    states = [(a.type, a.state) for a in cleared.status.alerts]
    assert states == [("DataDrift", "active"), ("DataDrift", "resolved")]


def test_alert_history_is_bounded() -> None:
    status = ModelMonitorStatus()
    for i in range(30):
        status = evaluate(observations(shift=1.0 if i % 2 == 0 else 0.0, seed=i), status, NOW + timedelta(minutes=5 * i)).status
    assert len(status.alerts) == 20
    assert status.alerts[-1].time == NOW + timedelta(minutes=5 * 29)


def test_blocked_evaluation_keeps_everything_and_says_why() -> None:
    good = evaluate(observations()).status
    blocked = MonitorObservations(
        at=NOW,
        version=None,
        deployment=DeploymentState(name="m", error="Deployment ns/m does not exist", reason="DeploymentNotFound"),
        blocked_reason="VersionUnresolved",
        blocked_message="MLflow alias 'champion' of 'm' is not set",
    )
    result = evaluate(blocked, good, NOW + timedelta(minutes=5))
    conditions = status_of(result)
    assert conditions["Ready"] == ("Unknown", "VersionUnresolved")
    assert conditions["DataDrift"] == ("Unknown", "VersionUnresolved")
    assert conditions["Healthy"] == ("Unknown", "DeploymentNotFound")
    assert result.status.features == good.features


def test_is_due_follows_schedule_and_generation() -> None:
    status = evaluate(observations()).status
    assert not is_due(status, 1, NOW + timedelta(minutes=4))
    assert is_due(status, 1, NOW + timedelta(minutes=5))
    assert is_due(status, 2, NOW + timedelta(minutes=1))
    assert is_due(ModelMonitorStatus(), 1, NOW)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (Sample({"feature": "f2", "le": "abc"}, 10.0), "bucket bound le='abc' is not a number"),
        (Sample({"feature": "f2", "le": "0.5"}, math.nan), "a bucket count is negative, NaN, infinite or past any count"),
        (Sample({"feature": "f2", "le": "0.5"}, math.inf), "a bucket count is negative, NaN, infinite or past any count"),
    ],
)
def test_one_unreadable_feature_affects_only_itself(bad: Sample, why: str) -> None:
    obs = observations(shift=1.0, category_shift=True)
    buckets = obs.current["featureBuckets"]
    current = {**obs.current, "featureBuckets": QueryOutcome("q", samples=(*buckets.samples, bad))}
    result = evaluate(replace(obs, current=current))
    features = {f.name: f for f in result.status.features}
    assert features["f2"].verdict == "InsufficientData" and features["f2"].test == why
    assert features["f1"].verdict == "Drift" and features["c1"].verdict == "Drift"
    conditions = {c.type: (c.status, c.reason) for c in result.status.conditions}
    assert conditions["DataDrift"] == ("True", "FeaturesDrifted") and conditions["Ready"] == ("True", "Evaluated")


def test_an_answer_that_is_not_counts_makes_only_its_checks_unknown() -> None:
    obs = observations()
    latency = obs.current["latencyBuckets"]
    broken = QueryOutcome("q", samples=(*latency.samples, Sample({"le": "<html>"}, 3.0)))
    result = evaluate(replace(obs, current={**obs.current, "latencyBuckets": broken}))
    conditions = {c.type: c for c in result.status.conditions}
    assert (conditions["LatencyHigh"].status, conditions["LatencyHigh"].reason) == ("Unknown", "QueryFailed")
    assert "a bucket bound le='<html>' that is not a number" in conditions["LatencyHigh"].message
    assert (conditions["DataDrift"].status, conditions["DataDrift"].reason) == ("False", "NoDrift")  # the rest goes on
