"""Metric histories with known drift, shared by the integration tests, the demo and the benchmarks.

`drift_scenario` is 60 days of a fraud-detection model's metrics ending now. From day 30:
`amount` shifts by one standard deviation (strong), `age` by 0.45 (moderate), the `merchant`
category mix changes (moderately), the predicted classes shift, accuracy declines steadily from 0.96 to
0.84, and `distance` goes from 1% to 10% of its values missing; `distance`'s values, `hour` and
`country` stay as they were, and so do latency and errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import stats

from tests.support.history import MetricsHistory

__all__ = ["DRIFT_EXPECTED", "DriftScenario", "drift_scenario", "floor_time", "training_sample"]

LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
FEATURE_BUCKETS = {
    "amount": [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
    "age": [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
    "distance": [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
    "hour": [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22],
}
SHIFTS = {"amount": 1.0, "age": 0.45, "distance": 0.0}
MERCHANT_BEFORE = {"grocery": 0.4, "travel": 0.2, "online": 0.3, "fuel": 0.1}
MERCHANT_AFTER = {"grocery": 0.25, "travel": 0.2, "online": 0.5, "fuel": 0.05}
COUNTRY = {"FR": 0.5, "DE": 0.3, "NL": 0.2}
CLASSES_BEFORE = {"legit": 0.8, "fraud": 0.1, "review": 0.1}
CLASSES_AFTER = {"legit": 0.65, "fraud": 0.2, "review": 0.15}

# What a correct evaluation at the end of the scenario says.
DRIFT_EXPECTED = {
    "conditions": {
        "Ready": "True",
        "Healthy": "True",
        "PerformanceDegraded": "True",
        "LatencyHigh": "False",
        "ErrorRateHigh": "False",
        "DataDrift": "True",
        "LabelDrift": "True",
        "ConceptDrift": "True",
        "DataQuality": "True",
    },
    "features": {
        "amount": ("Drift", "significant"),
        "age": ("Drift", "moderate"),
        "merchant": ("Drift", "moderate"),
        "distance": ("NoDrift", "none"),
        "hour": ("NoDrift", "none"),
        "country": ("NoDrift", "none"),
    },
    "trend": "decreasing",
}


def floor_time(at: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (at - epoch) // step * step


@dataclass(frozen=True)
class DriftScenario:
    history: MetricsHistory
    model: str
    version: str
    drift_start: datetime

    @property
    def labels(self) -> Mapping[str, str]:
        return {"model": self.model, "version": self.version}


def drift_scenario(
    *,
    end: datetime | None = None,
    model: str = "fraud-detector",
    version: str = "3",
    days: int = 60,
    step: timedelta = timedelta(minutes=15),
    seed: int = 7,
) -> DriftScenario:
    end = floor_time(end or datetime.now(UTC), step)
    start = end - timedelta(days=days)
    drift = start + timedelta(days=days // 2)
    history = MetricsHistory(start, end, step, seed=seed)
    labels = {"model": model, "version": version}

    def after_drift(before: object, after: object):  # one frozen object per regime: cheap to sample
        return lambda t: after if t >= drift else before

    for feature, bounds in FEATURE_BUCKETS.items():
        if feature == "hour":
            before = after = stats.uniform(0, 24)
        else:
            before, after = stats.norm(0, 1), stats.norm(SHIFTS[feature], 1)
        history.histogram(
            "model_feature_value",
            {**labels, "feature": feature},
            bounds,
            0.05,
            after_drift(before, after),
            signed_sums="model_feature_sum",
        )
    # Missing values of distance: 1% of its values before the drift, 10% after (0.05/s are present).
    history.counter(
        "model_feature_missing_total", {**labels, "feature": "distance"}, lambda t: 0.05 / 9 if t >= drift else 0.05 / 99
    )
    history.categorical(
        "model_feature_category_total",
        {**labels, "feature": "merchant"},
        "category",
        0.05,
        after_drift(MERCHANT_BEFORE, MERCHANT_AFTER),
    )
    history.categorical("model_feature_category_total", {**labels, "feature": "country"}, "category", 0.05, COUNTRY)
    history.categorical("model_predictions_total", labels, "class", 0.1, after_drift(CLASSES_BEFORE, CLASSES_AFTER))
    span = (end - drift).total_seconds()

    def accuracy(t: datetime) -> float:
        return 0.96 if t < drift else 0.96 - 0.12 * (t - drift).total_seconds() / span

    history.feedback("model_feedback_total", labels, ["legit", "fraud", "review"], 0.03, [0.8, 0.1, 0.1], accuracy)
    history.categorical("model_requests_total", labels, "status", 2.0, {"success": 0.995, "error": 0.005})
    history.histogram("model_request_duration_seconds", labels, LATENCY_BUCKETS, 2.0, stats.lognorm(0.5, scale=0.04))
    return DriftScenario(history=history, model=model, version=version, drift_start=drift)


def training_sample(n: int, seed: int = 0) -> dict[str, list[object]]:
    """Rows drawn from the scenario's distributions before the drift: the model's training data."""
    rng = np.random.default_rng(seed)

    def choice(probabilities: dict[str, float]) -> list[object]:
        return list(rng.choice(list(probabilities), size=n, p=list(probabilities.values())))

    return {
        "amount": list(rng.normal(0, 1, n)),
        "age": list(rng.normal(0, 1, n)),
        "distance": list(rng.normal(0, 1, n)),
        "hour": list(rng.uniform(0, 24, n)),
        "merchant": choice(MERCHANT_BEFORE),
        "country": choice(COUNTRY),
        "predicted": choice(CLASSES_BEFORE),
    }
