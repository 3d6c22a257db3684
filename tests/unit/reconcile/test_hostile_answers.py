"""Whatever Prometheus answers (NaN, infinities, negative or huge counts, bucket bounds that are
no number, odd labels), a decision never raises and its status is a body the API server takes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from modelpilot.api import MODEL_MONITOR, load_spec
from modelpilot.api.canary import AnalysisMetric, AnalysisSpec, CanaryReleaseStatus
from modelpilot.api.monitor import QUERY_NAMES, ModelMonitorStatus
from modelpilot.reconcile.canary import MetricAnswer
from modelpilot.reconcile.canary.analysis import judge_metric
from modelpilot.reconcile.monitor import DeploymentState, MonitorObservations, decide_monitor
from modelpilot.reconcile.queries import QueryOutcome, Sample, Series

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SPEC = load_spec(
    MODEL_MONITOR,
    {
        "model": {"name": "m"},
        "prometheus": {"url": "http://prometheus:9090"},
        "performance": {"latencyP99": 0.5, "errorRate": 0.01},
        "quality": {"accuracy": 0.9, "minSamples": 1},
        "drift": {"minSamples": 1},
    },
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 1e300, -1.0, 5.0, 1000.0]),
)
LABEL_VALUES = st.one_of(
    st.sampled_from(["0.1", "0.5", "+Inf", "-Inf", "NaN", "abc", "", "1e309", "success", "error", "a", "b", "f1"]),
    st.text(max_size=4),
)
LABELS = st.dictionaries(
    st.sampled_from(["le", "feature", "category", "status", "class", "predicted", "actual"]), LABEL_VALUES, max_size=5
)
SAMPLES = st.lists(st.builds(Sample, LABELS, NUMBERS), max_size=10)
OUTCOMES = st.builds(lambda samples: QueryOutcome("q", samples=tuple(samples)), SAMPLES)
POINTS = st.lists(st.tuples(st.sampled_from([1.0e9, 1.0e9 + 86400, 1.0e9 + 2 * 86400]), NUMBERS), max_size=4)
SERIES = st.builds(
    lambda series: QueryOutcome("q", series=tuple(series)),
    st.lists(st.builds(lambda labels, points: Series(labels, tuple(points)), LABELS, POINTS), max_size=4),
)


ANALYSIS = AnalysisSpec.model_validate({"prometheus": {"url": "http://prometheus:9090"}, "minSamples": 1})
METRICS = [
    AnalysisMetric(name="errors", builtin="error-rate", threshold_range={"max": 0.05}),
    AnalysisMetric(name="latency", builtin="latency", threshold_range={"max": 0.5}),
    AnalysisMetric(name="accuracy", builtin="accuracy", threshold_range={"min": 0.8}),
    AnalysisMetric(name="queue", query="max(queue_depth{$selector})", threshold_range={"max": 10}),
]


def monitor_status(
    current: dict[str, QueryOutcome], baseline: dict[str, QueryOutcome], series: QueryOutcome, ready: int
) -> dict[str, Any]:
    """The status body a monitor's decision writes on these answers."""
    obs = MonitorObservations(
        at=NOW,
        version="1",
        current=current,
        baseline=baseline,
        quality_series=series,
        deployment=DeploymentState(name="m", ready=ready, desired=2),
    )
    return decide_monitor(SPEC, ModelMonitorStatus(), obs, generation=1, now=NOW).status.to_body()


def canary_status(metric: AnalysisMetric, candidate: QueryOutcome, stable: QueryOutcome) -> dict[str, Any]:
    """The status body a release's check of ``metric`` writes on these answers."""
    record = judge_metric(metric, ANALYSIS, MetricAnswer(candidate, stable), thresholds_only=False, now=NOW)
    return CanaryReleaseStatus(last_analysis=[record], next_check=NOW + timedelta(seconds=5)).to_body()


def api_server_takes(body: dict[str, object]) -> None:
    json.dumps(body, allow_nan=False)  # strict JSON, as the API server reads it


# The status bodies decided on any answers.
MONITOR_STATUSES = st.builds(
    monitor_status,
    current=st.fixed_dictionaries({name: OUTCOMES for name in QUERY_NAMES}),
    baseline=st.fixed_dictionaries({name: OUTCOMES for name in ("predictions", "featureBuckets", "featureCategories")}),
    series=SERIES,
    ready=st.integers(-1, 3),
)
CANARY_STATUSES = st.builds(canary_status, st.sampled_from(METRICS), OUTCOMES, OUTCOMES)


# Derandomized: the same examples every run, so the suite's verdict does not depend on luck.
@settings(max_examples=400, deadline=None, derandomize=True)
@given(body=MONITOR_STATUSES)
def test_a_monitor_decides_on_any_answer(body: dict[str, Any]) -> None:
    api_server_takes(body)
    assert ModelMonitorStatus.model_validate(body).conditions  # and it reads back


# Derandomized: the same examples every run, so the suite's verdict does not depend on luck.
@settings(max_examples=400, deadline=None, derandomize=True)
@given(body=CANARY_STATUSES)
def test_a_canary_check_judges_any_answer(body: dict[str, Any]) -> None:
    api_server_takes(body)
