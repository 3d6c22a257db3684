"""Grafana dashboards of ModelMonitors: valid against the models they are built with, laid out
without overlaps, thresholds from the spec or the guide, every query PromQL that promtool parses
and that reads only what the operator exports (or the model server's preset metrics)."""

from __future__ import annotations

import codecs
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from pydantic import ValidationError

from modelpilot.api import MODEL_MONITOR, load_spec
from modelpilot.api.monitor import ModelMonitorSpec
from modelpilot.handlers.metrics import MonitorResults, ResourceStates
from modelpilot.reconcile.monitor.alerts import ALERTS
from modelpilot.reconcile.monitor.dashboard import (
    dashboard_configmap,
    dashboard_name,
    fleet_configmap,
    fleet_dashboard,
    grafana_dashboard_body,
    grafana_literal,
    monitor_dashboard,
)
from modelpilot.reconcile.monitor.grafana import SCHEMA_VERSION, Dashboard
from tests.support.manifests import drift_monitor
from tests.support.prometheus import find_binary

# Grafana's variable syntax: $name, [[name]] and ${name...} (public/app/features/variables/utils.ts).
GRAFANA_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
HOSTILE_MODEL = 'fraud"detector\\v2 $datasource [[namespace]] ${__rate_interval}'
# Kubernetes names cannot hold these; the functions take plain strings all the same.
HOSTILE_MONITOR = ('ml"$namespace', "fraud\\[[monitor]]")

SPECS: dict[str, ModelMonitorSpec] = {
    "demo": load_spec(MODEL_MONITOR, drift_monitor("http://prometheus:9090")["spec"]),
    "defaults": load_spec(MODEL_MONITOR, {"model": {"name": "m"}, "prometheus": {"url": "http://p:9090"}}),
    "every threshold": load_spec(
        MODEL_MONITOR,
        {
            "model": {"name": "m", "version": {"fixed": "7"}},
            "prometheus": {"url": "http://p:9090"},
            "performance": {"latencyP99": 0.3, "latencyP95": 0.2, "errorRate": 0.05},
            "quality": {"accuracy": 0.8, "f1": 0.7, "minSamples": 50},
            "drift": {"psiBands": [0.05, 0.3], "alpha": 0.01},
        },
    ),
    "tfserving": load_spec(
        MODEL_MONITOR, {"model": {"name": "m"}, "prometheus": {"url": "http://p:9090"}, "metrics": {"preset": "tfserving"}}
    ),
    "triton override": load_spec(
        MODEL_MONITOR,
        {
            "model": {"name": "m", "version": {"fixed": "1"}},
            "prometheus": {"url": "http://p:9090"},
            "metrics": {
                "preset": "triton",
                "overrides": {
                    "requests": "sum by (status) (label_replace(increase(my_requests{$selector}[$window]),"
                    ' "status", "$$1", "code", "(.*)"))'
                },
            },
        },
    ),
    "hostile model name": load_spec(
        MODEL_MONITOR,
        {"model": {"name": HOSTILE_MODEL, "version": {"fixed": 'v"1$x'}}, "prometheus": {"url": "http://p:9090"}},
    ),
}


def dashboards() -> Iterator[tuple[str, dict[str, Any]]]:
    for label, spec in SPECS.items():
        yield label, monitor_dashboard(spec, *HOSTILE_MONITOR if label == "hostile model name" else ("ml-prod", "fraud-detector"))
    yield "fleet", fleet_dashboard()


ALL = dict(dashboards())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [p for p in dashboard["panels"] if p["title"] == title]
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return queries + [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]


def interpolate(expr: str, variables: dict[str, str]) -> str:
    """What Grafana sends for ``expr``: known variables replaced, unknown ones left as written."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in (match.group(1), match.group(2), match.group(4)) if g)
        return variables.get(name, match.group(0))

    return GRAFANA_VARIABLE.sub(value, expr)


FLEET_VARIABLES = {"namespace": "ml-prod", "datasource": "prometheus"}


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(expr), lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None
    )
    return found


def thresholds(panel: dict[str, Any]) -> list[float | None]:
    return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@pytest.mark.parametrize("label", ALL)
def test_dashboard_round_trips_through_the_models_it_is_built_with(label: str) -> None:
    dashboard = ALL[label]
    assert Dashboard.model_validate(json.loads(json.dumps(dashboard))).to_json() == dashboard
    assert dashboard["schemaVersion"] >= SCHEMA_VERSION >= 39
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    # Grafana's base threshold step is an explicit null, not a missing value.
    bases = [
        p["fieldConfig"]["defaults"]["thresholds"]["steps"][0]
        for p in panels(dashboard)
        if p["type"] != "table" and "thresholds" in p["fieldConfig"]["defaults"]
    ]
    assert bases and all(set(base) == {"color", "value"} and base["value"] is None for base in bases)


def test_models_refuse_what_grafana_would_not_read() -> None:
    dashboard = ALL["demo"]
    typo = {**dashboard, "panels": [{**dashboard["panels"][1], "gridpos": {"x": 0, "y": 0, "w": 3, "h": 4}}]}
    with pytest.raises(ValidationError):
        Dashboard.model_validate(typo)
    too_wide = {**dashboard, "panels": [{**dashboard["panels"][1], "gridPos": {"x": 20, "y": 0, "w": 25, "h": 4}}]}
    with pytest.raises(ValidationError):
        Dashboard.model_validate(too_wide)
    no_expr = {**dashboard, "panels": [{**dashboard["panels"][1], "targets": [{"refId": "A", "expr": ""}]}]}
    with pytest.raises(ValidationError):
        Dashboard.model_validate(no_expr)


@pytest.mark.parametrize("label", ALL)
def test_panels_have_unique_ids_and_do_not_overlap(label: str) -> None:
    dashboard = ALL[label]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(titles) == len(set(titles))
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard["panels"]:
        box = p["gridPos"]
        assert box["x"] + box["w"] <= 24, p["title"]
        for x in range(box["x"], box["x"] + box["w"]):
            for y in range(box["y"], box["y"] + box["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


@pytest.mark.parametrize("label", ALL)
def test_every_panel_queries_prometheus_with_expr_and_ref_id(label: str) -> None:
    for p in panels(ALL[label]):
        assert p["type"] in {"timeseries", "stat", "gauge", "table"}
        assert p["targets"], p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]
        for target in p["targets"]:
            assert target["expr"].strip() and target["refId"]
            # A stat, gauge or table shows the value now; a time series, its history.
            assert target["instant"] is (p["type"] != "timeseries") and target["range"] is (p["type"] == "timeseries")


def test_demo_dashboard_shows_what_the_issue_asks_for() -> None:
    dashboard = ALL["demo"]
    titles = {p["title"] for p in dashboard["panels"]}
    assert {
        "Latency",
        "Throughput",
        "Error rate",
        "Accuracy",
        "F1, precision, recall",
        "PSI per feature",
        "Drift p-values per feature",
        "Prediction shares",
        "Degradation: accuracy change per day",
    } <= titles
    latency = [t["legendFormat"] for t in panel(dashboard, "Latency")["targets"]]
    assert latency[:3] == ["p50", "p95", "p99"]
    (alerts,) = [a for a in dashboard["annotations"]["list"] if "expr" in a]
    matchers = {(m.name, m.value) for s in selectors(alerts["expr"]) for m in s.matchers.matchers}
    assert selectors(alerts["expr"])[0].name == "ALERTS"
    assert {("namespace", "ml-prod"), ("monitor", "fraud-detector"), ("alertstate", "firing")} <= matchers


def test_thresholds_are_the_specs() -> None:
    dashboard = ALL["every threshold"]
    assert thresholds(panel(dashboard, "Latency")) == [None, 0.2, 0.3]
    assert thresholds(panel(dashboard, "p99 now")) == [None, 0.3]
    assert thresholds(panel(dashboard, "Error rate now")) == [None, 0.05]
    assert thresholds(panel(dashboard, "Accuracy now")) == [None, 0.8]
    assert thresholds(panel(dashboard, "Error rate")) == [None, 0.05]
    assert thresholds(panel(dashboard, "F1, precision, recall")) == [None, 0.7]
    assert thresholds(panel(dashboard, "F1 now")) == [None, 0.7]
    assert thresholds(panel(dashboard, "PSI per feature")) == [None, 0.05, 0.3]
    assert thresholds(panel(dashboard, "Drift p-values per feature")) == [None, 0.01]
    assert thresholds(panel(dashboard, "Labelled predictions")) == [None, 50]
    assert thresholds(panel(dashboard, "Accuracy")) == [None, 0.8]
    # Drawn, not only used for colour: dashed lines, and bands for PSI.
    assert panel(dashboard, "Latency")["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "dashed"}
    assert panel(dashboard, "PSI per feature")["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "line+area"}


def test_thresholds_the_spec_leaves_unset_are_the_guides() -> None:
    dashboard = ALL["defaults"]
    guide = {name: ALERTS[name].threshold for name in ("ModelAccuracyLow", "ModelLatencyHigh", "ModelErrorRateHigh")}
    assert guide == {"ModelAccuracyLow": 0.95, "ModelLatencyHigh": 0.1, "ModelErrorRateHigh": 0.01}
    assert ALERTS["ModelFeatureDrift"].threshold == 0.25
    assert thresholds(panel(dashboard, "Latency")) == [None, 0.1]
    assert thresholds(panel(dashboard, "Error rate")) == [None, 0.01]
    assert thresholds(panel(dashboard, "PSI per feature")) == [None, 0.1, 0.25]
    assert thresholds(panel(dashboard, "Accuracy")) == thresholds(panel(dashboard, "Accuracy now")) == [None, 0.95]
    # No F1 threshold in the spec nor in the guide: no line is drawn.
    f1 = panel(dashboard, "F1, precision, recall")["fieldConfig"]["defaults"]
    assert "thresholds" not in f1 and f1["custom"]["thresholdsStyle"] == {"mode": "off"}
    demo = ALL["demo"]  # accuracy 0.9, p99 0.5 and error rate 0.01 in its spec
    assert thresholds(panel(demo, "Latency")) == [None, 0.5]
    assert thresholds(panel(demo, "Accuracy")) == thresholds(panel(demo, "Accuracy now")) == [None, 0.9]


def test_every_expression_parses_in_promtool(tmp_path: Path) -> None:
    """One promtool run for every expression of every dashboard, as recording rules."""
    exprs = [interpolate(e, FLEET_VARIABLES) for dashboard in ALL.values() for e in expressions(dashboard)]
    rules = {
        "groups": [{"name": "dashboards", "rules": [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]}]
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [str(find_binary("promtool")), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_queries_read_only_what_the_operator_exports_or_the_preset_names() -> None:
    exported = {family.name for collector in (MonitorResults(), ResourceStates()) for family in collector.collect()}
    model_metrics = {"model_request_duration_seconds_bucket", "model_requests_total", "ALERTS"}
    for label, dashboard in ALL.items():
        if label in {"tfserving", "triton override"}:
            continue
        for expr in expressions(dashboard):
            names = {s.name for s in selectors(interpolate(expr, FLEET_VARIABLES))}
            assert names <= exported | model_metrics, (label, names - exported - model_metrics)
    fleet_metrics = {s.name for e in expressions(ALL["fleet"]) for s in selectors(interpolate(e, FLEET_VARIABLES))}
    assert {"modelpilot_resource_condition", "modelpilot_model_accuracy", "modelpilot_feature_drifted", "ALERTS"} <= fleet_metrics


def test_presets_and_overrides_reach_the_model_server_queries() -> None:
    tf = [t["expr"] for t in panel(ALL["tfserving"], "Latency")["targets"]][-1]
    assert ":tensorflow:serving:request_latency_bucket" in tf and tf.endswith("* 1e-06")  # microseconds to seconds
    rate = [t["expr"] for t in panel(ALL["triton override"], "Throughput")["targets"]][-1]
    assert "my_requests" in rate and rate.endswith("/ 300")  # the performance window, 5m by default


def test_spec_values_reach_prometheus_as_written_and_grafana_sees_no_variable_in_them() -> None:
    """A model name may hold quotes, backslashes and Grafana's variable syntax: Prometheus must
    read it back exactly, and Grafana must find nothing to replace in the query."""
    dashboard = ALL["hostile model name"]
    model_queries = [e for e in expressions(dashboard) if "model_request" in e]
    assert len(model_queries) == 2
    for expr in expressions(dashboard):
        assert interpolate(expr, {"datasource": "X", "namespace": "X", "__rate_interval": "X"}) == expr
    for expr in model_queries:
        matchers = {m.name: m.value for s in selectors(expr) for m in s.matchers.matchers}
        assert matchers == {"model": HOSTILE_MODEL, "version": 'v"1$x'}
    accuracy = panel(dashboard, "Accuracy")["targets"][0]["expr"]
    matchers = {m.name: m.value for s in selectors(accuracy) for m in s.matchers.matchers}
    assert matchers == {"namespace": HOSTILE_MONITOR[0], "monitor": HOSTILE_MONITOR[1]}


def test_grafana_literal_escapes_inside_strings_only() -> None:
    assert grafana_literal('a{b="$x[[y]]"} offset 5m') == 'a{b="\\x24x\\x5b\\x5by]]"} offset 5m'
    assert grafana_literal("rate(a[$__rate_interval])") == "rate(a[$__rate_interval])"
    escaped = grafana_literal(r'a{b="q\"$",c=' + "'$'}")
    assert escaped == r'a{b="q\"\x24",c=' + "'\\x24'}"
    assert codecs.decode(r"q\"\x24", "unicode_escape") == 'q"$'


def test_fleet_dashboard_selects_namespaces_with_a_variable() -> None:
    fleet = ALL["fleet"]
    variables = {v["name"]: v for v in fleet["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    namespace = variables["namespace"]
    assert namespace["type"] == "query" and namespace["multi"] and namespace["includeAll"]
    assert namespace["query"].startswith("label_values(modelpilot_resource_condition")
    for p in panels(fleet):
        for target in p["targets"]:
            if "ALERTS" in target["expr"] or "modelpilot_" in target["expr"]:
                assert 'namespace=~"$namespace"' in target["expr"], (p["title"], target["expr"])
    table = panel(fleet, "Every monitor")
    assert table["type"] == "table" and all(t["format"] == "table" for t in table["targets"])
    assert [t["id"] for t in table["transformations"]] == ["merge", "organize"]


def test_configmap_carries_the_sidecar_label_and_the_dashboard() -> None:
    spec = SPECS["demo"]
    configmap = dashboard_configmap(spec, "ml-prod", "fraud-detector")
    assert configmap["apiVersion"] == "v1" and configmap["kind"] == "ConfigMap"
    meta = configmap["metadata"]
    assert meta["name"] == "modelpilot-fraud-detector-dashboard" and meta["namespace"] == "ml-prod"
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "modelpilot"
    assert "ownerReferences" not in meta
    (key,) = configmap["data"]
    assert key == "ml-prod-fraud-detector.json"  # two namespaces' monitors of one name never share a file
    assert json.loads(configmap["data"][key]) == monitor_dashboard(spec, "ml-prod", "fraud-detector")
    assert dashboard_configmap(spec, "ml-prod", "fraud-detector") == configmap  # deterministic
    fleet = fleet_configmap("monitoring")
    assert fleet["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(fleet["data"]["modelpilot-fleet.json"]) == fleet_dashboard()


def test_grafana_operator_body_selects_instances() -> None:
    spec = SPECS["demo"]
    body = grafana_dashboard_body(spec, "ml-prod", "fraud-detector", {"dashboards": "grafana"}, folder="Models")
    assert body["apiVersion"] == "grafana.integreatly.org/v1beta1" and body["kind"] == "GrafanaDashboard"
    assert body["metadata"]["name"] == "modelpilot-fraud-detector-dashboard"
    assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelpilot"
    assert body["spec"]["instanceSelector"] == {"matchLabels": {"dashboards": "grafana"}}
    assert body["spec"]["folder"] == "Models" and body["spec"]["allowCrossNamespaceImport"] is True
    assert json.loads(body["spec"]["json"]) == monitor_dashboard(spec, "ml-prod", "fraud-detector")


def test_names_and_uids_are_deterministic_bounded_and_distinct() -> None:
    long = "m" * 253
    assert len(dashboard_name(long)) <= 253 and dashboard_name(long) == dashboard_name(long)
    assert dashboard_name(long) != dashboard_name("m" * 252)
    uids = {monitor_dashboard(SPECS["defaults"], ns, name)["uid"] for ns in ("a", "b") for name in ("x", long)}
    assert len(uids) == 4 and all(len(uid) <= 40 for uid in uids)
