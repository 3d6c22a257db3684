"""A ModelMonitor's decision: from observations to conditions, per-check results, alerts and Events.

Pure: it takes what the sources observed and the previous status, and returns the new status
and the Events to post. A check whose queries failed keeps its last good result and reports
``Unknown``; missing data never turns a problem condition to False.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelpilot.analysis import rank_by_effect
from modelpilot.api import parse_duration
from modelpilot.api.monitor import FiringAlert, ModelMonitorSpec, ModelMonitorStatus, MonitorSummary

from ..conditions import set_condition
from ..decision import Decision, backoff
from ..owners import MonitorRef
from .alerts import alert_history, transition_events
from .dashboard import dashboard_configmap, dashboard_name, grafana_dashboard_body
from .data_quality import assess_data_quality
from .drift import assess_data_drift, assess_label_drift
from .observations import MonitorObservations, checked
from .owned import (
    CONFIG_MAP,
    GRAFANA_DASHBOARD,
    PROMETHEUS_RULE,
    OwnedAction,
    OwnedKind,
    owned_verdicts,
    with_owner_and_hash,
)
from .performance import assess_performance, health_verdict
from .quality import assess_degradation, assess_quality, degradation_verdict
from .resources import RESOURCE_CONDITIONS, assess_resources
from .rules import NO_RULE_DEFAULTS, RuleDefaults, prometheus_rule, prometheus_rule_name
from .summary import latency_text, percent_text
from .verdict import Verdict

__all__ = ["CONDITION_TYPES", "MonitorDecision", "decide_monitor", "is_due", "owned_to_observe"]

CONDITION_TYPES = (
    "Ready",
    "Healthy",
    "PerformanceDegraded",
    "LatencyHigh",
    "ErrorRateHigh",
    "DataDrift",
    "LabelDrift",
    "ConceptDrift",
    "DataQuality",
)
FIRST_RETRY = timedelta(seconds=15)

#: A monitor's actions write the objects it owns; its other effects are status, Events and gauges.
MonitorDecision = Decision[ModelMonitorStatus, OwnedAction]


def is_due(status: ModelMonitorStatus, generation: int | None, now: datetime) -> bool:
    """Evaluate now? Yes when never evaluated, the spec changed, or the scheduled time came."""
    if status.last_evaluation is None or status.next_evaluation is None:
        return True
    if generation is not None and status.observed_generation != generation:
        return True
    return now >= status.next_evaluation


def _blocked(spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus) -> dict[str, Verdict]:
    """Every check Unknown for the reason nothing could be queried; last results are kept."""
    since = f"; last good result from {previous.last_success.isoformat()}" if previous.last_success else ""
    verdict = Verdict("Unknown", obs.blocked_reason or "Blocked", f"{obs.blocked_message}{since}")
    types = [*CONDITION_TYPES, *(RESOURCE_CONDITIONS if spec.resources.enabled else ())]
    return {type_: verdict for type_ in types if type_ != "Healthy"}


def decide_monitor(
    spec: ModelMonitorSpec,
    previous: ModelMonitorStatus,
    obs: MonitorObservations,
    *,
    generation: int | None,
    now: datetime,
    owner: MonitorRef | None = None,
    rule_defaults: RuleDefaults = NO_RULE_DEFAULTS,
) -> MonitorDecision:
    """The new status of a monitor, the Events its changes deserve, and the writes of the objects
    it owns (none without an ``owner``: a one-shot check owns nothing)."""
    obs = checked(obs)
    owned = _Owned(owner, rule_defaults)
    if obs.blocked_reason is not None:
        verdicts = {**_blocked(spec, obs, previous), "Healthy": health_verdict(obs)}
        return _finish(spec, obs, previous, verdicts, {}, owned, generation=generation, now=now, ok=False)

    performance, latency, errors = assess_performance(spec, obs, previous)
    label_drift, predicted_share, label = assess_label_drift(spec, obs, previous)
    quality, quality_failed = assess_quality(spec, obs, previous, predicted_share)
    features, drift_verdicts, data_drift = assess_data_drift(spec, obs, previous)
    data_quality, data_quality_verdict = assess_data_quality(spec, obs, previous)
    degradation, concept = assess_degradation(spec, obs, previous)
    hints = [f"{n} ({drift_verdicts[n].effect:.3g})" for n in rank_by_effect(drift_verdicts)]
    degraded = degradation_verdict(spec, quality, quality_failed, degradation, hints, previous.last_success)

    resources, pressure, overprovisioned = (None, None, None)
    if spec.resources.enabled:
        resources, pressure, overprovisioned = assess_resources(
            spec,
            obs.resources,
            previous,
            at=obs.at,
            namespace=obs.namespace,
            batch_size_mean=performance.batch_size_mean if performance else None,
        )
    # batchSize is optional: many servers do not export it, and its absence is no failure.
    failures = [o for name, o in obs.current.items() if not o.ok and name != "batchSize"] + [
        o for o in (*obs.baseline.values(), *(obs.resources or {}).values(), obs.quality_series) if o is not None and not o.ok
    ]
    first_error = failures[0].error if failures else None
    if first_error is not None:
        last = f"; last good evaluation at {previous.last_success.isoformat()}" if previous.last_success else ""
        ready = Verdict(
            "Unknown",
            "QueryFailed",
            f"{len(failures)} of {obs.query_count} queries failed: {first_error.message}{last}",
        )
    else:
        ready = Verdict("True", "Evaluated", f"{obs.query_count} queries answered for {obs.at.isoformat()}")
    verdicts = {
        "Ready": ready,
        "Healthy": health_verdict(obs),
        "PerformanceDegraded": degraded,
        "LatencyHigh": latency,
        "ErrorRateHigh": errors,
        "DataDrift": data_drift,
        "LabelDrift": label,
        "ConceptDrift": concept,
        "DataQuality": data_quality_verdict,
        **({"ResourcePressure": pressure, "Overprovisioned": overprovisioned} if pressure and overprovisioned else {}),
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
            accuracy_text=percent_text(quality.accuracy if quality else None),
            latency_p99_text=latency_text(performance.latency_p99 if performance else None),
            error_rate_text=percent_text(performance.error_rate if performance else None),
        ),
        "performance": performance,
        "quality": quality,
        "features": features,
        "label_drift": label_drift,
        "data_quality": data_quality,
        "degradation": degradation,
        "resources": resources,
        "queries": obs.query_count,
    }
    return _finish(spec, obs, previous, verdicts, sections, owned, generation=generation, now=now, ok=not failures)


@dataclass(frozen=True)
class _Owned:
    owner: MonitorRef | None
    rule_defaults: RuleDefaults

    def wanted(self, spec: ModelMonitorSpec, version: str | None) -> dict[OwnedKind, Mapping[str, Any]]:
        """The bodies of the objects the spec asks the monitor to own."""
        if self.owner is None:
            return {}
        ns, name = self.owner.namespace, self.owner.name
        wanted: dict[OwnedKind, Mapping[str, Any]] = {}
        kinds = _wanted_kinds(spec)
        if PROMETHEUS_RULE in kinds:
            rule = prometheus_rule(spec, namespace=ns, monitor=name, version=version, defaults=self.rule_defaults)
            wanted[PROMETHEUS_RULE] = with_owner_and_hash(rule, self.owner)
        if CONFIG_MAP in kinds:
            wanted[CONFIG_MAP] = with_owner_and_hash(dashboard_configmap(spec, ns, name), self.owner)
        if GRAFANA_DASHBOARD in kinds:
            body = grafana_dashboard_body(spec, ns, name, spec.dashboard.instance_selector)
            wanted[GRAFANA_DASHBOARD] = with_owner_and_hash(body, self.owner)
        return wanted


# The name of each kind of object a monitor owns, from the monitor's name.
_OWNED_NAMES: dict[OwnedKind, Callable[[str], str]] = {
    PROMETHEUS_RULE: prometheus_rule_name,
    CONFIG_MAP: dashboard_name,
    GRAFANA_DASHBOARD: dashboard_name,
}


def _wanted_kinds(spec: ModelMonitorSpec) -> set[OwnedKind]:
    asked = {
        PROMETHEUS_RULE: spec.alerting.prometheus_rule,
        CONFIG_MAP: spec.dashboard.config_map,
        GRAFANA_DASHBOARD: spec.dashboard.grafana_operator,
    }
    return {kind for kind, wanted in asked.items() if wanted}


def owned_to_observe(spec: ModelMonitorSpec, status: ModelMonitorStatus, monitor: str) -> list[tuple[OwnedKind, str]]:
    """The objects an evaluation reads: those the spec wants, and those it owned before (to delete)."""
    wanted, reported = _wanted_kinds(spec), {c.type for c in status.conditions}
    return [(kind, name(monitor)) for kind, name in _OWNED_NAMES.items() if kind in wanted or kind.condition in reported]


def _owned_names(monitor: str) -> Callable[[OwnedKind], str]:
    return lambda kind: _OWNED_NAMES[kind](monitor)


def _finish(
    spec: ModelMonitorSpec,
    obs: MonitorObservations,
    previous: ModelMonitorStatus,
    verdicts: Mapping[str, Verdict],
    sections: Mapping[str, object],
    owned: _Owned,
    *,
    generation: int | None,
    now: datetime,
    ok: bool,
) -> MonitorDecision:
    # The resource conditions exist while spec.resources is on.
    conditions = [c for c in previous.conditions if c.type not in RESOURCE_CONDITIONS or c.type in verdicts]
    for type_ in (*CONDITION_TYPES, *(t for t in RESOURCE_CONDITIONS if t in verdicts)):
        v = verdicts[type_]
        conditions = set_condition(conditions, type_, v.status, v.reason, v.message, now=now, generation=generation)
    actions: list[OwnedAction] = []
    if owned.owner is not None:
        # A version not read this time keeps the rules' version label: no rewrite for a passing failure.
        version = obs.version or (previous.summary.version if previous.summary else None)
        owned_conditions, actions = owned_verdicts(
            spec,
            owned.wanted(spec, version),
            obs.owned,
            obs.audience,
            namespace=owned.owner.namespace,
            names=_owned_names(owned.owner.name),
        )
        for type_, verdict in owned_conditions.items():
            if verdict is None:
                conditions = [c for c in conditions if c.type != type_]
            else:
                conditions = set_condition(
                    conditions, type_, verdict.status, verdict.reason, verdict.message, now=now, generation=generation
                )
    consecutive = 0 if ok else previous.consecutive_failures + 1
    interval = parse_duration(spec.interval)
    # Failures retry sooner than the interval, backing off: 15s, 30s, 1m, ... up to the interval.
    delay = interval if ok else backoff(FIRST_RETRY, interval, consecutive)
    status = previous.model_copy(
        update={
            **sections,
            "observed_generation": generation,
            "conditions": conditions,
            "last_evaluation": now,
            "last_success": now if ok else previous.last_success,
            "next_evaluation": now + delay,
            "consecutive_failures": consecutive,
            "alerts": alert_history(previous.conditions, conditions, previous.alerts, now),
            "firing_alerts": _firing(obs, previous),
        }
    )
    readable = ModelMonitorStatus.model_validate(_rounded(status.model_dump()))
    return Decision(status=readable, actions=actions, events=transition_events(previous.conditions, conditions))


def _firing(obs: MonitorObservations, previous: ModelMonitorStatus) -> list[FiringAlert]:
    """The firing alerts Prometheus reported; the last known ones when it could not say."""
    if obs.firing is None or not obs.firing.ok:
        return list(previous.firing_alerts)
    alerts = {
        (s.labels.get("alertname", ""), s.labels.get("severity", ""), s.labels.get("feature"))
        for s in obs.firing.samples
        if s.labels.get("alertname")
    }
    return [FiringAlert(name=name, severity=severity, feature=feature) for name, severity, feature in sorted(alerts, key=str)][
        :50
    ]


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
