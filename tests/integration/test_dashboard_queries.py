"""The dashboards against a real Prometheus: in the demo's scenario (60 days of a drifting model,
backfilled) with the operator evaluating it and Prometheus scraping the operator, every panel's
query draws data, as Grafana would send it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from modelpilot.api import MODEL_MONITOR, load_spec, parse_duration
from modelpilot.reconcile.monitor.dashboard import fleet_dashboard, monitor_dashboard
from tests.support.kube import OperatorProcess, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.prometheus import PrometheusServer
from tests.unit.reconcile.test_dashboard import interpolate

MONITOR = "fraud-detector"  # drift_monitor's name


@pytest.fixture
def scraping_operator(operator: OperatorProcess, drift_prometheus: PrometheusServer) -> Iterator[PrometheusServer]:
    """The drift scenario's Prometheus, scraping the operator's /metrics every second for one test."""
    drift_prometheus.set_scrape_targets({"modelpilot": [urlsplit(operator.metrics_url).netloc]})
    try:
        yield drift_prometheus
    finally:
        drift_prometheus.set_scrape_targets(())


def empty_panels(prometheus: PrometheusServer, dashboard: dict[str, Any], variables: dict[str, str]) -> list[str]:
    """Panel queries that answer no series: a stat, gauge or table as an instant query now; a time
    series as a range query over the dashboard's time range."""
    now = time.time()
    span = parse_duration(dashboard["time"]["from"].removeprefix("now-")).total_seconds()
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = interpolate(target["expr"], variables)
            if target["instant"]:
                result = prometheus.query(expr, at=now)
            else:
                result = prometheus.query_range(expr, now - span, now, step=timedelta(minutes=2))
            if not result:
                empty.append(f"{panel['title']} {target['refId']}: {expr}")
    return empty


def test_every_panel_of_both_dashboards_draws_data_in_the_demo_scenario(
    scraping_operator: PrometheusServer, operator: OperatorProcess, namespace: str
) -> None:
    prometheus = scraping_operator
    serving_deployment(operator.cluster, namespace)
    manifest = drift_monitor(prometheus.url)
    operator.cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    spec = load_spec(MODEL_MONITOR, manifest["spec"])
    where = f'namespace="{namespace}"'

    # The positive signal: Prometheus holds the gauges of an evaluation and the Ready condition.
    wait_for(
        lambda: (
            prometheus.query(f"modelpilot_monitor_last_evaluation_timestamp_seconds{{{where}}}")
            and prometheus.query(f'modelpilot_resource_condition{{{where},condition="Ready"}}')
        ),
        timeout=90,
        what="an evaluation's gauges scraped by Prometheus",
    )

    monitor = monitor_dashboard(spec, namespace, MONITOR)
    fleet = fleet_dashboard()
    # Grafana fills the fleet's namespace variable as a regex of the chosen namespaces.
    variables = {"namespace": namespace}
    assert empty_panels(prometheus, monitor, {}) == []
    assert empty_panels(prometheus, fleet, variables) == []

    # The namespace variable offers the monitor's namespace.
    (namespace_variable,) = [v for v in fleet["templating"]["list"] if v["name"] == "namespace"]
    selector = re.fullmatch(r"label_values\((.+), namespace\)", namespace_variable["query"])
    assert selector is not None
    assert namespace in prometheus.api("label/namespace/values", **{"match[]": selector.group(1)})

    # No alert rules are loaded here, so the alert annotations find no series: Prometheus accepts
    # the queries all the same (a syntax error would raise).
    for dashboard, given in ((monitor, {}), (fleet, variables)):
        for annotation in dashboard["annotations"]["list"]:
            if "expr" in annotation:
                assert prometheus.query(interpolate(annotation["expr"], given)) == []
