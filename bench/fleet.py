"""A fleet of served models with many features, as Prometheus would hold their metrics: the
data of the query fan-out and operator-at-scale benchmarks.

Each model exports what the `generic` preset queries: latency histogram, requests, predicted
classes, feedback, and ``features`` feature distributions (numerical ones as histograms with
``buckets`` buckets, categorical ones as counters per category). The second day differs from
the first for a few features, so the drift tests have something to find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import stats

from tests.support.history import MetricsHistory
from tests.support.scenarios import floor_time

__all__ = ["Fleet", "fleet_history", "monitor_spec"]

LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
CLASSES = {"legit": 0.8, "fraud": 0.1, "review": 0.1}
CATEGORIES = ["a", "b", "c", "d", "e", "f"]


@dataclass(frozen=True)
class Fleet:
    history: MetricsHistory
    models: tuple[str, ...]
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    buckets: int
    version: str = "1"

    @property
    def features(self) -> tuple[str, ...]:
        return self.numerical + self.categorical


def fleet_history(
    models: int,
    *,
    features: int = 50,
    categorical: int = 10,
    buckets: int = 20,
    days: int = 2,
    step: timedelta = timedelta(hours=1),
    end: datetime | None = None,
    seed: int = 11,
) -> Fleet:
    """``models`` models, each with ``features`` features (``categorical`` of them categorical)."""
    end = floor_time(end or datetime.now(UTC), step)
    start = end - timedelta(days=days)
    drift_at = end - timedelta(days=1)
    history = MetricsHistory(start, end, step, seed=seed)
    numerical_names = tuple(f"x{i:02d}" for i in range(features - categorical))
    categorical_names = tuple(f"c{i:02d}" for i in range(categorical))
    bounds = list(np.linspace(-3.0, 3.0, buckets - 1))
    same = stats.norm(0, 1)
    shifted = stats.norm(0.5, 1)
    before = dict(zip(CATEGORIES, [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]))
    after = dict(zip(CATEGORIES, [0.15, 0.25, 0.2, 0.1, 0.1, 0.2]))
    names = tuple(f"model-{i:04d}" for i in range(models))
    for model in names:
        labels = {"model": model, "version": "1"}
        for j, feature in enumerate(numerical_names):
            # Every tenth numerical feature drifts by half a standard deviation on the last day.
            shape = (lambda t, d=drift_at: shifted if t >= d else same) if j % 10 == 0 else same
            history.histogram("model_feature_value", {**labels, "feature": feature}, bounds, 0.2, shape)
        for j, feature in enumerate(categorical_names):
            weights = (lambda t, d=drift_at: after if t >= d else before) if j % 5 == 0 else before
            history.categorical("model_feature_category_total", {**labels, "feature": feature}, "category", 0.2, weights)
        history.categorical("model_predictions_total", labels, "class", 0.2, CLASSES)
        history.feedback("model_feedback_total", labels, list(CLASSES), 0.05, list(CLASSES.values()), 0.93)
        history.categorical("model_requests_total", labels, "status", 1.0, {"success": 0.995, "error": 0.005})
        history.histogram("model_request_duration_seconds", labels, LATENCY_BUCKETS, 1.0, stats.lognorm(0.5, scale=0.04))
    return Fleet(history, names, numerical_names, categorical_names, buckets)


def monitor_spec(model: str, prometheus_url: str, *, interval: str = "5m", version: str = "1") -> dict[str, object]:
    """The spec of a ModelMonitor of one fleet model: drift of the last day against the day before."""
    return {
        "model": {"name": model, "version": {"fixed": version}},
        "prometheus": {"url": prometheus_url, "timeout": "30s"},
        "interval": interval,
        "performance": {"window": "1h", "latencyP99": 0.5, "errorRate": 0.01},
        "quality": {"window": "1d", "minSamples": 200, "accuracy": 0.9},
        "drift": {"window": "1d", "baseline": {"offset": "1d", "window": "1d"}},
        "degradation": {"horizon": "2d", "step": "6h"},
    }
