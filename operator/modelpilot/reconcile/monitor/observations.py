"""What a ModelMonitor evaluation reads, and the fixed plan of queries that reads it.

The plan does not grow with the number of features: one query per metric family and window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from modelpilot.api import parse_duration
from modelpilot.api.monitor import ModelMonitorSpec
from modelpilot.api.profile import ReferenceProfile

from ..promql import monitor_query
from ..queries import PlannedQuery, QueryFailed, QueryOutcome, usable_count
from .owned import OwnedKind, OwnedView, RuleAudience

__all__ = ["DeploymentState", "MonitorObservations", "checked", "query_plan"]


@dataclass(frozen=True)
class DeploymentState:
    name: str
    ready: int | None = None
    desired: int | None = None
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class MonitorObservations:
    """Everything one evaluation reads: query outcomes by name, at one evaluation time."""

    at: datetime
    version: str | None
    namespace: str | None = None
    current: Mapping[str, QueryOutcome] = field(default_factory=dict)
    baseline: Mapping[str, QueryOutcome] = field(default_factory=dict)
    quality_series: QueryOutcome | None = None
    # The serving pods' resources (spec.resources), by query name; None when not asked.
    resources: Mapping[str, QueryOutcome] | None = None
    # This monitor's alerts firing in Prometheus (ALERTS); None when not asked.
    firing: QueryOutcome | None = None
    deployment: DeploymentState | None = None
    profile: ReferenceProfile | None = None
    # Set when the evaluation could not query at all (version, profile or credentials missing).
    blocked_reason: str | None = None
    blocked_message: str | None = None
    # The objects the monitor owns (PrometheusRule, dashboards) as the cluster holds them, and
    # the Prometheus objects that might load its rules.
    owned: Mapping[OwnedKind, OwnedView] = field(default_factory=dict)
    audience: RuleAudience | None = None

    @property
    def query_count(self) -> int:
        return (
            len(self.current)
            + len(self.baseline)
            + len(self.resources or {})
            + (self.quality_series is not None)
            + (self.firing is not None)
        )


def _baseline_end_and_window(spec: ModelMonitorSpec, at: datetime) -> tuple[datetime, timedelta] | None:
    baseline = spec.drift.baseline
    if baseline.mlflow_profile:
        return None
    if baseline.start is not None and baseline.end is not None:
        return baseline.end, baseline.end - baseline.start
    assert baseline.offset is not None
    window = parse_duration(baseline.window) if baseline.window else parse_duration(spec.drift.window)
    return at - parse_duration(baseline.offset), window


def query_plan(
    spec: ModelMonitorSpec, *, namespace: str, version: str | None, at: datetime
) -> tuple[list[PlannedQuery], list[PlannedQuery], PlannedQuery | None]:
    """The instant queries for the current window, for the baseline, and the quality range query."""

    def planned(name: str, window: timedelta, when: datetime) -> PlannedQuery | None:
        promql = monitor_query(spec, name, version=version, namespace=namespace, window=window)
        return PlannedQuery(name, promql, when) if promql else None

    performance = parse_duration(spec.performance.window)
    drift = parse_duration(spec.drift.window)
    windows = {
        "latencyBuckets": performance,
        "latencySum": performance,
        "requests": performance,
        "batchSize": performance,
        "feedback": parse_duration(spec.quality.window),
        "predictions": drift,
        "featureBuckets": drift,
        "featureCategories": drift,
        "featureMissing": drift,
        "featureSums": drift,
    }
    current = [q for name, window in windows.items() if (q := planned(name, window, at))]
    baseline: list[PlannedQuery] = []
    reference = _baseline_end_and_window(spec, at)
    if reference is not None and (spec.drift.enabled or spec.label_drift.enabled or spec.data_quality.enabled):
        end, window = reference
        names = ("predictions", "featureBuckets", "featureCategories", "featureSums")
        baseline = [q for name in names if (q := planned(name, window, end))]
    series = None
    if spec.degradation.enabled:
        series = planned("feedback", parse_duration(spec.degradation.step), at)
    return current, baseline, series


#: Queries answered per feature: an unreadable feature is set aside alone (see drift.py).
_PER_FEATURE = ("featureBuckets", "featureCategories", "featureMissing", "featureSums")


def _unusable(name: str, outcome: QueryOutcome) -> str | None:
    """Why an answer is not counts this query's contract allows, or None."""
    values = [s.value for s in outcome.samples] + [v for series in outcome.series for _, v in series.points]
    if not all(usable_count(v) for v in values):
        return "a value that is negative, NaN, infinite or past any count"
    if name == "latencyBuckets":
        for sample in outcome.samples:
            try:
                bound = float(sample.labels.get("le", "+Inf"))
            except ValueError:
                bound = math.nan
            if math.isnan(bound):
                return f"a bucket bound le={sample.labels.get('le')!r} that is not a number"
    return None


def _checked(name: str, outcome: QueryOutcome) -> QueryOutcome:
    why = None if not outcome.ok or name in _PER_FEATURE else _unusable(name, outcome)
    if why is None:
        return outcome
    return QueryOutcome(outcome.query, error=QueryFailed("BadAnswer", f"Prometheus answered {why} for {name}", outcome.query))


def checked(obs: MonitorObservations) -> MonitorObservations:
    """``obs`` with every answer that is not counts turned into a failed query, so only the
    checks that need it are Unknown, and nothing downstream sees such a number."""
    series = obs.quality_series
    return replace(
        obs,
        current={name: _checked(name, o) for name, o in obs.current.items()},
        baseline={name: _checked(name, o) for name, o in obs.baseline.items()},
        quality_series=None if series is None else _checked("feedback", series),
    )
