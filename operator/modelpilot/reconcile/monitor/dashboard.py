"""Grafana dashboards of ModelMonitors, built as plain manifests: one per monitor from its spec
(thresholds drawn where the spec puts them), a fleet overview, and the ConfigMap or
grafana-operator ``GrafanaDashboard`` that delivers each.

The panels read the operator's gauges (the findings of each evaluation) and, for latency and
request rate, the model server's own metrics through its preset, so those two keep drawing while
the operator is down.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelpilot.api import MODEL_MONITOR, parse_duration
from modelpilot.api.monitor import AlertName, ModelMonitorSpec

from ..promql import PRESETS, escape_label_value, monitor_query
from .alerts import ALERTS
from .grafana import (
    GRID_WIDTH,
    Annotation,
    Annotations,
    Dashboard,
    DataSourceRef,
    FieldConfig,
    FieldDefaults,
    GridPos,
    Panel,
    PanelType,
    Target,
    TemplateVariable,
    Templating,
    Thresholds,
    ThresholdStep,
    TimeRange,
    Transformation,
)
from .rules import threshold

__all__ = [
    "SIDECAR_LABEL",
    "Limits",
    "dashboard_configmap",
    "dashboard_name",
    "fleet_configmap",
    "fleet_dashboard",
    "grafana_dashboard_body",
    "limits",
    "monitor_dashboard",
]

#: The label kube-prometheus-stack's Grafana sidecar loads dashboards from.
SIDECAR_LABEL = ("grafana_dashboard", "1")
MANAGED_BY = {"app.kubernetes.io/managed-by": "modelpilot"}
FLEET_NAME = "modelpilot-fleet"


@dataclass(frozen=True)
class Limits:
    """The lines a dashboard draws: the spec's thresholds, else the monitoring guide's."""

    accuracy: float
    f1: float | None
    latency_p99: float
    latency_p95: float | None
    error_rate: float
    psi_bands: tuple[float, float]


def limits(spec: ModelMonitorSpec) -> Limits:
    """The alert rules' thresholds (the spec's, else the monitoring guide's): the lines agree with the alerts."""
    low, high = spec.drift.psi_bands
    return Limits(
        accuracy=_limit(spec, "ModelAccuracyLow"),
        f1=spec.quality.f1,
        latency_p99=_limit(spec, "ModelLatencyHigh"),
        latency_p95=spec.performance.latency_p95,
        error_rate=_limit(spec, "ModelErrorRateHigh"),
        psi_bands=(low, _limit(spec, "ModelFeatureDrift")),
    )


def _limit(spec: ModelMonitorSpec, alert: AlertName) -> float:
    value = threshold(spec, alert)
    assert value is not None  # these alerts have a default in the table
    return value


def _guide(alert: AlertName) -> float:
    """The monitoring guide's threshold of an alert, for the fleet (no one spec to read)."""
    value = ALERTS[alert].threshold
    assert value is not None
    return value


# -- PromQL --------------------------------------------------------------------------------------

# Grafana replaces $name, ${name} and [[name]] anywhere in a query, inside PromQL strings too;
# PromQL's \x escapes spell the same characters in a form Grafana leaves alone.
_GRAFANA_SYNTAX = {"$": "\\x24", "[": "\\x5b"}


def grafana_literal(expr: str) -> str:
    """``expr`` with every ``$`` and ``[`` inside its quoted strings escaped, so a label value from
    a spec reaches Prometheus as written instead of being read by Grafana as a variable."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for char in expr:
        if quote is None:
            quote = char if char in "\"'" else None
        elif escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == quote:
            quote = None
        else:
            char = _GRAFANA_SYNTAX.get(char, char)
        out.append(char)
    return "".join(out)


def _selector(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels.items()) + "}"


def _max(metric: str, selector: str, by: str = "") -> str:
    """One series per ``by`` labels however many operator replicas or scrape jobs export it."""
    return f"max{f' by ({by})' if by else ''} ({metric}{selector})"


# -- layout --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    expr: str
    legend: str | None = None


@dataclass(frozen=True)
class _Draft:
    """A panel before it is placed: the layout gives it an id and a position."""

    type: PanelType
    title: str
    width: int = GRID_WIDTH
    height: int = 8
    queries: Sequence[_Query] = ()
    description: str | None = None
    defaults: FieldDefaults = field(default_factory=FieldDefaults)
    transformations: Sequence[Transformation] = ()


def _row(title: str) -> _Draft:
    return _Draft("row", title, height=1)


def _place(drafts: Sequence[_Draft]) -> tuple[Panel, ...]:
    """Left to right, wrapping at the grid's width; a row starts a line of its own."""
    panels: list[Panel] = []
    x = y = line_height = 0
    for number, draft in enumerate(drafts, start=1):
        if draft.type == "row" or x + draft.width > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        instant = draft.type in ("stat", "gauge", "table")
        datasource = None if draft.type == "row" else DataSourceRef()
        targets = tuple(
            Target(
                ref_id=chr(ord("A") + i),
                expr=query.expr,
                legend_format=query.legend,
                instant=instant,
                range=not instant,
                format="table" if draft.type == "table" else "time_series",
            )
            for i, query in enumerate(draft.queries)
        )
        panels.append(
            Panel(
                id=number,
                type=draft.type,
                title=draft.title,
                description=draft.description,
                grid_pos=GridPos(x=x, y=y, w=draft.width, h=draft.height),
                datasource=datasource,
                targets=targets,
                field_config=None if draft.type == "row" else FieldConfig(defaults=draft.defaults),
                options=_OPTIONS.get(draft.type),
                transformations=tuple(draft.transformations) or None,
                collapsed=False if draft.type == "row" else None,
                panels=() if draft.type == "row" else None,
            )
        )
        x = GRID_WIDTH if draft.type == "row" else x + draft.width  # what follows a row goes below it
        line_height = max(line_height, draft.height)
    return tuple(panels)


# -- field settings ------------------------------------------------------------------------------


def _steps(base: str, *steps: tuple[str, float | None]) -> Thresholds:
    """Threshold steps from ``base`` up, in ascending order; unset values are left out."""
    given = sorted(((value, color) for color, value in steps if value is not None), key=lambda step: step[0])
    return Thresholds(steps=(ThresholdStep(color=base), *(ThresholdStep(color=c, value=v) for v, c in given)))


def _series(
    unit: str,
    thresholds: Thresholds | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    bands: bool = False,
    **custom: Any,
) -> FieldDefaults:
    """Field defaults of a time series whose thresholds are drawn: dashed lines, or coloured bands."""
    style = {"mode": "line+area" if bands else "dashed"} if thresholds else {"mode": "off"}
    return FieldDefaults(
        unit=unit,
        min=low,
        max=high,
        thresholds=thresholds,
        color={"mode": "palette-classic"},
        custom={"lineWidth": 2, "fillOpacity": 0, "showPoints": "never", "thresholdsStyle": style, **custom},
    )


def _stat(
    title: str,
    width: int,
    expr: str,
    unit: str,
    thresholds: Thresholds,
    *,
    kind: PanelType = "stat",
    description: str | None = None,
    **extra: Any,
) -> _Draft:
    """A stat (or gauge) of the value now, coloured by its thresholds."""
    defaults = FieldDefaults(unit=unit, thresholds=thresholds, color={"mode": "thresholds"}, **extra)
    return _Draft(kind, title, width, 4, [_Query(expr)], description=description, defaults=defaults)


def _firing(alerts: str, width: int) -> _Draft:
    return _stat("Firing alerts", width, f"count({alerts}) or vector(0)", "none", _steps("green", ("red", 1)))


def _drifted(title: str, width: int, per_feature: str) -> _Draft:
    return _stat(title, width, f"sum({per_feature})", "none", _steps("green", ("orange", 1)))


_LEGEND = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}, "tooltip": {"mode": "multi"}}
_STAT = {
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    "colorMode": "background",
    "graphMode": "none",
}
_OPTIONS: dict[str, dict[str, Any]] = {"timeseries": _LEGEND, "stat": _STAT}
_READY_MAPPING = {
    "type": "value",
    "options": {"1": {"text": "Ready", "color": "green"}, "0": {"text": "Not ready", "color": "red"}},
}


# -- the per-monitor dashboard -------------------------------------------------------------------


def monitor_dashboard(spec: ModelMonitorSpec, namespace: str, name: str) -> dict[str, Any]:
    """The dashboard JSON of one ModelMonitor: serving, quality and drift, alerts as annotations."""
    return _monitor_dashboard(spec, namespace, name).to_json()


def _monitor_dashboard(spec: ModelMonitorSpec, namespace: str, name: str) -> Dashboard:
    lines = limits(spec)
    monitor = _selector({"namespace": namespace, "monitor": name})
    ready = _selector({"kind": MODEL_MONITOR.kind, "namespace": namespace, "name": name, "condition": "Ready", "status": "True"})
    alerts = _selector({"alertstate": "firing", "namespace": namespace, "monitor": name})

    def gauge(metric: str, by: str = "") -> str:
        return _max(metric, monitor, by)

    interval = parse_duration(spec.interval).total_seconds()
    drafts = [
        _row("Now"),
        _stat(
            "Ready", 3, _max("modelpilot_resource_condition", ready), "none", _steps("red", ("green", 1)),
            mappings=(_READY_MAPPING,),
        ),
        _stat(
            "Accuracy now", 3, gauge("modelpilot_model_accuracy"), "percentunit", _steps("red", ("green", lines.accuracy)),
            kind="gauge", min=0, max=1,
        ),
        _stat(
            "F1 now", 3, gauge("modelpilot_model_f1"), "percentunit",
            _steps("blue" if lines.f1 is None else "red", ("green", lines.f1)),
        ),
        _stat("p99 now", 3, gauge("modelpilot_model_latency_p99_seconds"), "s", _steps("green", ("red", lines.latency_p99))),
        _stat(
            "Error rate now", 3, gauge("modelpilot_model_error_rate"), "percentunit", _steps("green", ("red", lines.error_rate))
        ),
        _drifted("Drifted features", 3, gauge("modelpilot_feature_drifted", "feature")),
        _firing(f"ALERTS{alerts}", 3),
        _stat(
            "Since last evaluation", 3, f"time() - {gauge('modelpilot_monitor_last_evaluation_timestamp_seconds')}", "s",
            _steps("green", ("red", 3 * interval)),
            description="A monitor that stops evaluating keeps its last findings: this says how old they are.",
        ),
        _row("Serving"),
        _Draft(
            "timeseries", "Latency", 12,
            queries=[
                _Query(gauge("modelpilot_model_latency_p50_seconds"), "p50"),
                _Query(gauge("modelpilot_model_latency_p95_seconds"), "p95"),
                _Query(gauge("modelpilot_model_latency_p99_seconds"), "p99"),
                *_model_latency(spec, namespace),
            ],
            description=f"Over the performance window ({spec.performance.window}); dashed lines at the latency thresholds.",
            defaults=_series("s", _steps("green", ("orange", lines.latency_p95), ("red", lines.latency_p99)), low=0),
        ),
        _Draft(
            "timeseries", "Throughput", 6,
            queries=[_Query(gauge("modelpilot_model_throughput"), "evaluated"), *_model_request_rate(spec, namespace)],
            defaults=_series("reqps", low=0),
        ),
        _Draft(
            "timeseries", "Error rate", 6, queries=[_Query(gauge("modelpilot_model_error_rate"), "errors")],
            defaults=_series("percentunit", _steps("green", ("red", lines.error_rate)), low=0),
        ),
        _row("Quality"),
        _Draft(
            "timeseries", "Accuracy", 6, queries=[_Query(gauge("modelpilot_model_accuracy"), "accuracy")],
            description=f"Over the quality window ({spec.quality.window}), from labelled predictions.",
            defaults=_series("percentunit", _steps("red", ("green", lines.accuracy)), high=1),
        ),
        _Draft(
            "timeseries", "F1, precision, recall", 6,
            queries=[
                _Query(gauge("modelpilot_model_f1"), "F1"),
                _Query(gauge("modelpilot_model_precision"), "precision"),
                _Query(gauge("modelpilot_model_recall"), "recall"),
            ],
            description="Macro averages over the classes.",
            defaults=_series("percentunit", None if lines.f1 is None else _steps("red", ("green", lines.f1)), high=1),
        ),
        _Draft(
            "timeseries", "Labelled predictions", 6, queries=[_Query(gauge("modelpilot_model_quality_samples"), "samples")],
            description="Quality is judged only with at least the dashed line's count of labels in the window.",
            defaults=_series("none", _steps("red", ("green", spec.quality.min_samples)), low=0),
        ),
        _Draft(
            "timeseries", f"Degradation: {spec.degradation.metric} change per day", 6,
            queries=[_Query(gauge("modelpilot_degradation_slope"), "Sen's slope")],
            description=f"Trend of {spec.degradation.metric} over {spec.degradation.horizon}; below the line it declines.",
            defaults=_series("percentunit", _steps("red", ("green", 0.0))),
        ),
        _row("Drift"),
        _Draft(
            "timeseries", "PSI per feature", 12, queries=[_Query(gauge("modelpilot_feature_psi", "feature"), "{{feature}}")],
            description="Population stability index against the baseline; bands at the moderate and significant levels.",
            defaults=_series(
                "none", _steps("green", ("orange", lines.psi_bands[0]), ("red", lines.psi_bands[1])), low=0, bands=True
            ),
        ),
        _Draft(
            "timeseries", "Drift p-values per feature", 12,
            queries=[_Query(gauge("modelpilot_feature_drift_pvalue", "feature"), "{{feature}}")],
            description=f"Corrected ({spec.drift.correction}); below alpha = {spec.drift.alpha} a feature may drift.",
            defaults=_series(
                "none", _steps("red", ("green", spec.drift.alpha)), high=1, scaleDistribution={"type": "log", "log": 10}
            ),
        ),
        _Draft(
            "table", "Features now", 12, queries=[
                _Query(gauge("modelpilot_feature_psi", "feature")),
                _Query(gauge("modelpilot_feature_drift_pvalue", "feature")),
                _Query(gauge("modelpilot_feature_drifted", "feature")),
                _Query(gauge("modelpilot_feature_samples", "feature")),
            ],
            defaults=FieldDefaults(decimals=3),
            transformations=_table(["feature"], {"A": "PSI", "B": "p-value", "C": "drifted", "D": "samples"}),
        ),
        _Draft(
            "timeseries", "Prediction shares", 8,
            queries=[_Query(gauge("modelpilot_class_prediction_share", "class"), "{{class}}")],
            defaults=_series("percentunit", low=0, high=1, fillOpacity=60, stacking={"mode": "normal"}),
        ),
        _Draft(
            "timeseries", "Label drift p-value", 4, queries=[_Query(gauge("modelpilot_label_drift_pvalue"), "classes")],
            defaults=_series("none", _steps("red", ("green", spec.label_drift.alpha)), high=1),
        ),
    ]  # fmt: skip
    return Dashboard(
        uid=_uid(namespace, name),
        title=f"modelpilot / {namespace} / {name}",
        description=f"ModelMonitor {namespace}/{name} of model {spec.model.name}, generated by modelpilot.",
        tags=("modelpilot", "model-monitor"),
        time=TimeRange(from_="now-24h"),
        templating=Templating(list=(_DATASOURCE,)),
        annotations=Annotations(list=(_BUILT_IN, _alerts(grafana_literal(f"ALERTS{alerts}")))),
        panels=_escaped(_place(drafts)),
    )


def _model_query(spec: ModelMonitorSpec, namespace: str, query: str) -> tuple[str, float] | None:
    """Query ``query`` of the spec's preset over its performance window, and that window in seconds."""
    window = parse_duration(spec.performance.window)
    fixed = spec.model.version.fixed if spec.model.version else None
    # A version resolved from MLflow changes; the dashboard then shows them all.
    promql = monitor_query(spec, query, version=fixed, namespace=namespace, window=window)
    return (promql, window.total_seconds()) if promql else None


def _model_latency(spec: ModelMonitorSpec, namespace: str) -> list[_Query]:
    found = _model_query(spec, namespace, "latencyBuckets")
    if found is None:
        return []
    unit = PRESETS[spec.metrics.preset].latency_unit
    scale = "" if unit == 1.0 else f" * {unit:g}"
    return [_Query(f"histogram_quantile(0.99, {found[0]}){scale}", "p99 (model server, live)")]


def _model_request_rate(spec: ModelMonitorSpec, namespace: str) -> list[_Query]:
    found = _model_query(spec, namespace, "requests")
    return [] if found is None else [_Query(f"sum({found[0]}) / {found[1]:g}", "requests (model server, live)")]


def _escaped(panels: tuple[Panel, ...]) -> tuple[Panel, ...]:
    return tuple(
        panel.model_copy(update={"targets": tuple(t.model_copy(update={"expr": grafana_literal(t.expr)}) for t in panel.targets)})
        for panel in panels
    )


def _table(by: Sequence[str], columns: Mapping[str, str]) -> list[Transformation]:
    """Instant queries joined on ``by`` into one table, one column per query, named."""
    return [
        Transformation(id="merge"),
        Transformation(
            id="organize",
            options={
                "excludeByName": {"Time": True},
                "indexByName": {label: i for i, label in enumerate(by)},
                "renameByName": {f"Value #{ref}": title for ref, title in columns.items()},
            },
        ),
    ]


_DATASOURCE = TemplateVariable(name="datasource", label="Prometheus", type="datasource", query="prometheus", refresh=1)
_BUILT_IN = Annotation(
    name="Annotations & Alerts",
    datasource=DataSourceRef(type="grafana", uid="-- Grafana --"),
    built_in=1,
    type="dashboard",
    hide=True,
    icon_color="rgba(0, 211, 255, 1)",
)


def _alerts(expr: str) -> Annotation:
    return Annotation(
        name="Firing alerts",
        datasource=DataSourceRef(),
        expr=expr,
        step="60s",
        title_format="{{alertname}}",
        text_format="{{severity}}: {{monitor}} ({{model}})",
        tag_keys="severity,alertname",
        use_value_for_time=False,
    )


def _uid(*parts: str) -> str:
    """A stable Grafana uid (40 characters at most) that keeps a readable prefix."""
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]
    readable = re.sub(r"[^a-z0-9-]+", "-", parts[-1].lower())[:24].strip("-")
    return f"mp-{readable}-{digest}"


# -- the fleet overview --------------------------------------------------------------------------


def fleet_dashboard() -> dict[str, Any]:
    """One dashboard across every ModelMonitor, with a namespace variable."""
    return _fleet_dashboard().to_json()


def _fleet_dashboard() -> Dashboard:
    scope = 'namespace=~"$namespace"'
    ready_of = f'modelpilot_resource_condition{{kind="{MODEL_MONITOR.kind}",condition="Ready",{scope}'
    per_monitor = "namespace, monitor"
    as_monitor = f'label_replace({ready_of},status="True"}}, "monitor", "$1", "name", "(.*)")'

    def gauge(metric: str, by: str = per_monitor) -> str:
        return f"max by ({by}) ({metric}{{{scope}}})"

    alerts = f'ALERTS{{alertstate="firing",monitor!="",{scope}}}'
    evaluated = "modelpilot_monitor_last_evaluation_timestamp_seconds"
    drifted = f"sum by ({per_monitor}) ({gauge('modelpilot_feature_drifted', 'namespace, monitor, feature')})"
    drafts = [
        _row("Fleet"),
        _stat("Monitors", 4, f"count(max by (namespace, name) ({ready_of}}}))", "none", _steps("blue")),
        _stat("Ready", 5, f'sum(max by (namespace, name) ({ready_of},status="True"}}))', "none", _steps("green")),
        _stat(
            "Not ready", 5, f'sum(max by (namespace, name) ({ready_of},status!="True"}}))', "none", _steps("green", ("red", 1))
        ),
        _drifted("Drifted features now", 5, drifted),
        _firing(alerts, 5),
        _Draft(
            "table", "Every monitor", 24, 10,
            queries=[
                _Query(f"max by ({per_monitor}) ({as_monitor})"),
                _Query(gauge("modelpilot_model_accuracy")),
                _Query(gauge("modelpilot_model_latency_p99_seconds")),
                _Query(gauge("modelpilot_model_error_rate")),
                _Query(drifted),
                # Zero for a monitor without firing alerts, so the column is never blank.
                _Query(f"count by ({per_monitor}) ({alerts}) or 0 * {gauge(evaluated)}"),
                _Query(f"time() - {gauge(evaluated)}"),
            ],
            description=f"Accuracy below {_guide('ModelAccuracyLow'):g} is the monitoring guide's alert threshold; "
            "each monitor's own dashboard draws its spec's.",
            defaults=FieldDefaults(decimals=3),
            transformations=_table(
                ["namespace", "monitor"],
                {"A": "Ready", "B": "accuracy", "C": "p99 (s)", "D": "error rate", "E": "drifted features",
                 "F": "firing alerts", "G": "since evaluation (s)"},
            ),
        ),
        _Draft(
            "timeseries", "Accuracy", 12, queries=[_Query(gauge("modelpilot_model_accuracy"), "{{namespace}}/{{monitor}}")],
            defaults=_series("percentunit", _steps("red", ("green", _guide('ModelAccuracyLow'))), high=1),
        ),
        _Draft(
            "timeseries", "Drifted features", 12, queries=[_Query(drifted, "{{namespace}}/{{monitor}}")],
            defaults=_series("none", low=0),
        ),
        _Draft(
            "timeseries", "Latency p99", 12,
            queries=[_Query(gauge("modelpilot_model_latency_p99_seconds"), "{{namespace}}/{{monitor}}")],
            defaults=_series("s", _steps("green", ("red", _guide('ModelLatencyHigh'))), low=0),
        ),
        _Draft(
            "timeseries", "Error rate", 12,
            queries=[_Query(gauge("modelpilot_model_error_rate"), "{{namespace}}/{{monitor}}")],
            defaults=_series("percentunit", _steps("green", ("red", _guide('ModelErrorRateHigh'))), low=0),
        ),
    ]  # fmt: skip
    namespaces = f'label_values(modelpilot_resource_condition{{kind="{MODEL_MONITOR.kind}"}}, namespace)'
    return Dashboard(
        uid=FLEET_NAME,
        title="modelpilot / fleet",
        description="Every ModelMonitor: readiness, quality, drift and firing alerts, generated by modelpilot.",
        tags=("modelpilot", "model-monitor"),
        time=TimeRange(from_="now-24h"),
        templating=Templating(
            list=(
                _DATASOURCE,
                TemplateVariable(
                    name="namespace",
                    label="Namespace",
                    type="query",
                    query=namespaces,
                    definition=namespaces,
                    datasource=DataSourceRef(),
                    refresh=2,  # on time range change: namespaces come and go
                    multi=True,
                    include_all=True,
                    all_value=".+",
                    sort=1,
                ),
            )
        ),
        annotations=Annotations(list=(_BUILT_IN, _alerts(alerts))),
        panels=_place(drafts),
    )


# -- delivery ------------------------------------------------------------------------------------


def dashboard_name(name: str) -> str:
    """The ConfigMap and GrafanaDashboard name of monitor ``name``'s dashboard (253 characters at most)."""
    full = f"modelpilot-{name}-dashboard"
    if len(full) <= 253:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"modelpilot-{name[:220].rstrip('.-')}-{digest}-dashboard"


def _labels(monitor: str) -> dict[str, str]:
    return {**MANAGED_BY, "modelpilot.dev/model-monitor": monitor}


def _configmap(dashboard: Dashboard, namespace: str, name: str, key: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, SIDECAR_LABEL[0]: SIDECAR_LABEL[1]}},
        "data": {key: json.dumps(dashboard.to_json(), indent=1, sort_keys=True)},
    }


def dashboard_configmap(spec: ModelMonitorSpec, namespace: str, name: str) -> dict[str, Any]:
    """The ConfigMap that kube-prometheus-stack's Grafana sidecar loads monitor ``name``'s dashboard from.

    The key carries the namespace: the sidecar writes every ConfigMap's keys into one folder, so
    two monitors of the same name in two namespaces would overwrite each other's file."""
    return _configmap(
        _monitor_dashboard(spec, namespace, name), namespace, dashboard_name(name), f"{namespace}-{name}.json", _labels(name)
    )


def fleet_configmap(namespace: str) -> dict[str, Any]:
    """The fleet overview as a sidecar ConfigMap in ``namespace`` (the operator's or Grafana's)."""
    return _configmap(_fleet_dashboard(), namespace, f"{FLEET_NAME}-dashboard", f"{FLEET_NAME}.json", MANAGED_BY)


def grafana_dashboard_body(
    spec: ModelMonitorSpec,
    namespace: str,
    name: str,
    instance_selector: Mapping[str, str],
    *,
    folder: str | None = None,
    allow_cross_namespace_import: bool = True,
) -> dict[str, Any]:
    """A grafana-operator ``GrafanaDashboard`` of monitor ``name``, for the Grafana instances whose
    labels match ``instance_selector``. Grafana usually runs in another namespace than the model,
    which grafana-operator allows only with ``allowCrossNamespaceImport``."""
    body: dict[str, Any] = {
        "apiVersion": "grafana.integreatly.org/v1beta1",
        "kind": "GrafanaDashboard",
        "metadata": {"name": dashboard_name(name), "namespace": namespace, "labels": _labels(name)},
        "spec": {
            "instanceSelector": {"matchLabels": dict(instance_selector)},
            "allowCrossNamespaceImport": allow_cross_namespace_import,
            "json": json.dumps(monitor_dashboard(spec, namespace, name), indent=1, sort_keys=True),
        },
    }
    if folder:
        body["spec"]["folder"] = folder
    return body
