"""A ModelMonitor's own objects on a real API server: its PrometheusRule and its dashboards are
written, kept, put back, deleted when turned off, and its conditions say whether a Prometheus
loads the rules and whether a kind's CRD is missing."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.prometheus import PrometheusServer

MONITOR = "fraud-detector"
RULE = f"modelpilot-{MONITOR}"
DASHBOARD = f"modelpilot-{MONITOR}-dashboard"


def condition(cluster: Cluster, namespace: str, type_: str) -> tuple[str, str, str] | None:
    status = cluster.get("modelmonitors.modelpilot.dev", MONITOR, namespace).get("status", {})
    for c in status.get("conditions", []):
        if c["type"] == type_:
            return c["status"], c["reason"], c["message"]
    return None


def reaches(cluster: Cluster, namespace: str, type_: str, status: str, reason: str) -> tuple[str, str, str]:
    return wait_for(
        lambda: (got := condition(cluster, namespace, type_)) and got[:2] == (status, reason) and got,
        timeout=90,
        what=f"{type_}={status}/{reason}",
    )


def exists(cluster: Cluster, kind: str, name: str, namespace: str) -> bool:
    return cluster.kubectl("get", kind, name, "-n", namespace, check=False).returncode == 0


def patch_spec(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> None:
    cluster.kubectl("patch", "modelmonitor", MONITOR, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": spec}))


def test_a_monitor_owns_its_rules_and_dashboard_and_says_whether_a_prometheus_loads_them(
    operator: OperatorProcess, drift_prometheus: PrometheusServer, namespace: str
) -> None:
    cluster = operator.cluster
    cluster.kubectl("apply", "-f", str(REPO / "tests" / "fixtures" / "monitoring-crds.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/prometheusrules.monitoring.coreos.com")
    # A Prometheus that loads the rules of its own namespace labelled team=fraud.
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": "k8s"},
        "spec": {"ruleSelector": {"matchLabels": {"team": "fraud"}}},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(prometheus))
    serving_deployment(cluster, namespace)
    monitor = drift_monitor(drift_prometheus.url, interval="10s")
    monitor["spec"]["dashboard"] = {"configMap": True}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(monitor))

    # Written and owned, but no Prometheus selects it: the condition says so and how to fix it.
    _, _, message = reaches(cluster, namespace, "AlertRules", "False", "NotSelected")
    assert f"{namespace}/k8s" in message and "ruleLabels" in message
    rule = cluster.get("prometheusrules.monitoring.coreos.com", RULE, namespace)
    owner = rule["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelMonitor", MONITOR, True)
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert "modelpilot_model_accuracy" in alerts["ModelAccuracyLow"]["expr"] and "< 0.9 " in alerts["ModelAccuracyLow"]["expr"]
    assert alerts["ModelAccuracyLow"]["labels"] == {
        "severity": "critical",
        "model": "fraud-detector",
        "version": "3",
        "namespace": namespace,
        "monitor": MONITOR,
    }
    reaches(cluster, namespace, "Dashboard", "True", "Applied")
    dashboard = cluster.get("configmap", DASHBOARD, namespace)
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"][f"{namespace}-{MONITOR}.json"])["panels"]

    # Labelled as the Prometheus selects: loaded.
    patch_spec(cluster, namespace, {"alerting": {"ruleLabels": {"team": "fraud"}}})
    _, _, message = reaches(cluster, namespace, "AlertRules", "True", "Loaded")
    assert f"{namespace}/k8s" in message

    # Deleted by hand: put back at the next evaluation.
    cluster.kubectl("delete", "prometheusrules.monitoring.coreos.com", RULE, "-n", namespace)
    wait_for(lambda: exists(cluster, "prometheusrules.monitoring.coreos.com", RULE, namespace), timeout=60, what="the rule back")

    # The sidecar ConfigMap turned off and a GrafanaDashboard asked for, whose CRD is not installed.
    patch_spec(cluster, namespace, {"dashboard": {"configMap": False, "grafanaOperator": True}})
    _, _, message = reaches(cluster, namespace, "Dashboard", "False", "CRDNotInstalled")
    assert "grafana.integreatly.org/v1beta1" in message
    wait_for(lambda: not exists(cluster, "configmap", DASHBOARD, namespace), timeout=60, what="the ConfigMap deleted")

    # Nothing asked for: the objects go, and so do their conditions.
    patch_spec(cluster, namespace, {"dashboard": {"grafanaOperator": False}, "alerting": {"prometheusRule": False}})
    wait_for(
        lambda: condition(cluster, namespace, "AlertRules") is None and condition(cluster, namespace, "Dashboard") is None,
        timeout=60,
        what="the conditions removed",
    )
    assert not exists(cluster, "prometheusrules.monitoring.coreos.com", RULE, namespace)
    reasons = [e["reason"] for e in cluster.events(namespace, MONITOR)]
    assert "AlertRulesFalse" in reasons and "DashboardFalse" in reasons  # transitions are Events too
