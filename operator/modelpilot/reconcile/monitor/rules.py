"""Prometheus alert rules generated from a ModelMonitor, and the rules for the operator itself.

Serving alerts (latency, errors, traffic) query the model's own metrics through the preset, so
they fire while the operator is down; quality and drift alerts read the operator's gauges and
need enough samples in the window, so low traffic stays silent; the meta-alerts fire when a
monitor's evaluations stop or keep failing. Which alert watches what, its default threshold,
``for:`` and severity are one table, ``ALERTS``, that also gives each problem condition its
severity (``PROBLEMS``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelpilot.api import MODEL_MONITOR, parse_duration
from modelpilot.api.monitor import ALERT_NAMES, AlertName, ModelMonitorSpec
from modelpilot.api.notify import Severity

from ..promql import PRESETS, escape_label_value, monitor_query
from .alerts import ALERTS, AlertKind

__all__ = [
    "DEFAULT_RUNBOOK_URL",
    "NO_RULE_DEFAULTS",
    "OPERATOR_RULES",
    "RuleDefaults",
    "alert_rules",
    "firing_alerts_query",
    "prometheus_rule",
    "prometheus_rule_name",
    "rule_groups",
    "threshold",
]

DEFAULT_RUNBOOK_URL = "https://modelpilot.dev/docs/alerts"
#: A monitor is stale when it was not evaluated for this many intervals.
STALE_INTERVALS = 3
#: Evaluations in a row with a failed query before ModelMonitorFailing.
FAILING_EVALUATIONS = 3


@dataclass(frozen=True)
class RuleDefaults:
    """What the operator's configuration adds to every monitor's rules."""

    rule_labels: Mapping[str, str]
    runbook_url: str = DEFAULT_RUNBOOK_URL


#: No labels or runbook of the operator's own: what a one-shot check renders.
NO_RULE_DEFAULTS = RuleDefaults(rule_labels={})


def prometheus_rule_name(monitor: str) -> str:
    return f"modelpilot-{monitor}"


def _labels(**labels: str) -> str:
    return ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels.items())


@dataclass(frozen=True)
class _Context:
    spec: ModelMonitorSpec
    namespace: str
    monitor: str
    version: str | None

    @property
    def gauges(self) -> str:
        return _labels(namespace=self.namespace, monitor=self.monitor)

    def condition(self, type_: str, status: str) -> str:
        selector = _labels(kind=MODEL_MONITOR.kind, namespace=self.namespace, name=self.monitor, condition=type_, status=status)
        return f"modelpilot_resource_condition{{{selector}}} == 1"

    def serving(self, query: str) -> str | None:
        """One of the model's own queries over the performance window."""
        window = parse_duration(self.spec.performance.window)
        return monitor_query(self.spec, query, version=self.version, namespace=self.namespace, window=window)

    def enough_requests(self, expr: str) -> str | None:
        requests = self.serving("requests")
        return f"({expr}) and on() sum({requests}) >= {self.spec.alerting.min_requests}" if requests else None


def _latency(c: _Context, threshold: float) -> str | None:
    buckets = c.serving("latencyBuckets")
    if buckets is None:
        return None
    unit = PRESETS[c.spec.metrics.preset].latency_unit
    scaled = f" * {unit!r}" if unit != 1.0 else ""
    return c.enough_requests(f"histogram_quantile(0.99, {buckets}){scaled} > {threshold!r}")


def _error_rate(c: _Context, threshold: float) -> str | None:
    requests = c.serving("requests")
    if requests is None or not PRESETS[c.spec.metrics.preset].reports_errors:
        return None
    # Every status but success is an error (the requests query's contract, see promql.py).
    errors = f'sum({requests} unless on(status) label_replace(vector(1), "status", "success", "", ""))'
    return c.enough_requests(f"{errors} / sum({requests}) > {threshold!r}")


def _traffic_absent(c: _Context, threshold: float) -> str | None:
    requests = c.serving("requests")
    return f"(sum({requests}) <= {threshold!r}) or on() absent({requests})" if requests else None


def _accuracy(c: _Context, threshold: float) -> str:
    return (
        f"modelpilot_model_accuracy{{{c.gauges}}} < {threshold!r}"
        f" and on(namespace, monitor) modelpilot_model_quality_samples{{{c.gauges}}} >= {c.spec.quality.min_samples}"
    )


def _feature_drift(c: _Context, threshold: float) -> str:
    return (
        f"modelpilot_feature_psi{{{c.gauges}}} > {threshold!r}"
        f" and on(namespace, monitor, feature) modelpilot_feature_samples{{{c.gauges}}} >= {c.spec.drift.min_samples}"
    )


def _stale(c: _Context, threshold: float) -> str:
    # last_over_time keeps the last evaluation's time while the operator is down.
    seconds = STALE_INTERVALS * parse_duration(c.spec.interval).total_seconds()
    return f"time() - last_over_time(modelpilot_monitor_last_evaluation_timestamp_seconds{{{c.gauges}}}[1d]) > {seconds:g}"


_EXPRESSIONS: dict[AlertName, Callable[[_Context, float], str | None]] = {
    "ModelUnhealthy": lambda c, _: c.condition("Healthy", "False"),
    "ModelAccuracyLow": _accuracy,
    "ModelErrorRateHigh": _error_rate,
    "ModelLatencyHigh": _latency,
    "ModelTrafficAbsent": _traffic_absent,
    "ModelFeatureDrift": _feature_drift,
    "ModelLabelDrift": lambda c, _: c.condition("LabelDrift", "True"),
    "ModelConceptDrift": lambda c, _: c.condition("ConceptDrift", "True"),
    "ModelMonitorStale": _stale,
    "ModelMonitorFailing": lambda c, threshold: f"modelpilot_monitor_consecutive_failures{{{c.gauges}}} >= {threshold:g}",
    # Only monitors that watch resources have these conditions.
    "ModelResourcePressure": lambda c, _: c.condition("ResourcePressure", "True") if c.spec.resources.enabled else None,
    "ModelOverprovisioned": lambda c, _: c.condition("Overprovisioned", "True") if c.spec.resources.enabled else None,
    "ModelDataQuality": lambda c, _: c.condition("DataQuality", "True") if c.spec.data_quality.enabled else None,
}

# The spec's own limits, where it sets one, come before the table's defaults.
_SPEC_THRESHOLDS: dict[AlertName, Callable[[ModelMonitorSpec], float | None]] = {
    "ModelAccuracyLow": lambda spec: spec.quality.accuracy,
    "ModelErrorRateHigh": lambda spec: spec.performance.error_rate,
    "ModelLatencyHigh": lambda spec: spec.performance.latency_p99,
    "ModelFeatureDrift": lambda spec: spec.drift.psi_bands[1],
}


@dataclass(frozen=True)
class AlertRule:
    """One generated alert: what the README's table and the rule file say about it."""

    name: AlertName
    expr: str
    hold: str
    severity: Severity
    threshold: float | None
    kind: AlertKind


def threshold(spec: ModelMonitorSpec, name: AlertName) -> float | None:
    """An alert's limit: the spec's override, else the spec's own limit, else the table's default."""
    override = spec.alerting.alerts.get(name)
    if override is not None and override.threshold is not None:
        return override.threshold
    own = _SPEC_THRESHOLDS[name](spec) if name in _SPEC_THRESHOLDS else None
    return own if own is not None else ALERTS[name].threshold


def alert_rules(spec: ModelMonitorSpec, *, namespace: str, monitor: str, version: str | None) -> list[AlertRule]:
    """The alerts this monitor's spec asks for, with thresholds, ``for:`` and severities resolved."""
    context = _Context(spec, namespace, monitor, version)
    rules = []
    for name in ALERT_NAMES:
        kind, override = ALERTS[name], spec.alerting.alerts.get(name)
        if override is not None and not override.enabled:
            continue
        limit = threshold(spec, name)
        if name == "ModelMonitorFailing" and limit is None:
            limit = FAILING_EVALUATIONS
        expr = _EXPRESSIONS[name](context, limit if limit is not None else 0.0)
        if expr is None:
            continue  # the preset has no such metric (KServe reports no errors), or the spec no such check
        hold = override.hold if override is not None and override.hold else kind.hold
        severity = override.severity if override is not None and override.severity else kind.severity
        rules.append(AlertRule(name, expr, hold, severity, limit, kind))
    return rules


def firing_alerts_query(namespace: str, monitor: str) -> str:
    """The alerts of a monitor's rules that Prometheus has firing (its ALERTS series)."""
    return f'ALERTS{{alertstate="firing",{_labels(namespace=namespace, monitor=monitor)}}}'


def _rule(
    rule: AlertRule, spec: ModelMonitorSpec, namespace: str, monitor: str, version: str | None, runbook: str
) -> dict[str, Any]:
    shown = f"{rule.threshold:g}" if rule.threshold is not None else ""
    labels = {
        "severity": rule.severity,
        "model": spec.model.name,
        "version": version or "",
        "namespace": namespace,
        "monitor": monitor,
    }
    subject = f"{spec.model.name} (monitor {namespace}/{monitor})"
    return {
        "alert": rule.name,
        "expr": rule.expr,
        "for": rule.hold,
        # The operator's labels last: a spec cannot relabel an alert into another team's routes.
        "labels": {key: value for key, value in labels.items() if value},
        "annotations": {
            "summary": f"{rule.kind.summary} for {subject}",
            "description": rule.kind.description.format(threshold=shown, hold=rule.hold),
            "runbook_url": f"{runbook.rstrip('/')}#{rule.name.lower()}",
        },
    }


def rule_groups(
    spec: ModelMonitorSpec, *, namespace: str, monitor: str, version: str | None, defaults: RuleDefaults
) -> list[dict[str, Any]]:
    """The rule groups of a monitor, as in a Prometheus rule file (and a PrometheusRule's spec)."""
    runbook = spec.alerting.runbook_url or defaults.runbook_url
    rules = [
        _rule(rule, spec, namespace, monitor, version, runbook)
        for rule in alert_rules(spec, namespace=namespace, monitor=monitor, version=version)
    ]
    # No group interval: Prometheus's own evaluation interval, so `for:` counts as users expect.
    return [{"name": f"modelpilot.{namespace}.{monitor}", "rules": rules}]


def prometheus_rule(
    spec: ModelMonitorSpec, *, namespace: str, monitor: str, version: str | None, defaults: RuleDefaults
) -> dict[str, Any]:
    """The PrometheusRule holding a monitor's rules; the caller adds the ownerReference."""
    groups = rule_groups(spec, namespace=namespace, monitor=monitor, version=version, defaults=defaults)
    # The spec's labels cannot take the operator's keys: those make the rule load where it should.
    labels = {**spec.alerting.rule_labels, **defaults.rule_labels, "app.kubernetes.io/managed-by": "modelpilot"}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": prometheus_rule_name(monitor),
            "namespace": namespace,
            "labels": labels,
        },
        "spec": {"groups": groups},
    }


#: Alerts on the operator itself; the chart and manifests ship them (``modelpilot alerts --operator``).
OPERATOR_RULES: list[dict[str, Any]] = [
    {
        "name": "modelpilot.operator",
        "rules": [
            {
                "alert": "ModelpilotOperatorDown",
                "expr": 'absent(up{job=~".*modelpilot.*"} == 1)',
                "for": "5m",
                "labels": {"severity": "critical"},
                "annotations": {
                    "summary": "No modelpilot operator is up",
                    "description": "No scrape target of a job named like modelpilot answered for 5 minutes: monitors "
                    "are not evaluated, releases do not progress. Serving alerts keep firing; quality and drift "
                    "alerts cannot.",
                    "runbook_url": f"{DEFAULT_RUNBOOK_URL}#modelpilotoperatordown",
                },
            },
            {
                "alert": "ModelpilotTicksFailing",
                "expr": 'sum by (kind, namespace, name) (modelpilot_resource_condition{condition="Ready",status="Unknown"}) == 1',
                "for": "15m",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "A modelpilot resource has been Ready=Unknown for 15 minutes",
                    "description": "{{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.name }} cannot be evaluated; "
                    "`kubectl describe` shows the reason.",
                    "runbook_url": f"{DEFAULT_RUNBOOK_URL}#modelpilotticksfailing",
                },
            },
        ],
    }
]
