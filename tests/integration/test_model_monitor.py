"""ModelMonitor end to end: 60 days of backfilled history in a real Prometheus, the operator on a
real API server, and `modelpilot check` on the same data."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from modelpilot.sources.mlflow import MlflowRegistry
from tests.support.kube import Cluster, OperatorProcess, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.mlflow_server import MlflowServer
from tests.support.prometheus import PrometheusServer
from tests.support.scenarios import DRIFT_EXPECTED, FEATURE_BUCKETS, training_sample

MONITOR = "fraud-detector"


def status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return cluster.get("modelmonitors.modelpilot.dev", MONITOR, namespace).get("status", {})


def conditions(cluster: Cluster, namespace: str) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status(cluster, namespace).get("conditions", [])}


def evaluated_after(cluster: Cluster, namespace: str, after: str | None) -> dict[str, Any] | None:
    current = status(cluster, namespace)
    if current.get("lastEvaluation") and current.get("lastEvaluation") != after and "summary" in current:
        return current
    return None


def columns_with_status(cluster: Cluster, namespace: str) -> tuple[dict[str, str], dict[str, Any]] | None:
    """`kubectl get mm` columns and the status they show, or None when an evaluation came between."""
    before = status(cluster, namespace)
    table = cluster.kubectl("get", "mm", MONITOR, "-n", namespace).stdout.splitlines()
    after = status(cluster, namespace)
    if before.get("lastEvaluation") != after.get("lastEvaluation"):
        return None
    return dict(zip(table[0].split(), table[1].split(), strict=True)), after


def gauges_with_status(
    operator: OperatorProcess, namespace: str, labels: dict[str, str]
) -> tuple[dict[str, float], dict[str, Any]] | None:
    """The operator's gauges and the status of the evaluation that set them, or None while they differ."""
    shown = status(operator.cluster, namespace)
    evaluated = operator.metric("modelpilot_monitor_last_evaluation_timestamp_seconds", **labels)
    gauges = {
        "amount drifted": operator.metric("modelpilot_feature_drifted", **labels, feature="amount"),
        "distance drifted": operator.metric("modelpilot_feature_drifted", **labels, feature="distance"),
        "amount psi": operator.metric("modelpilot_feature_psi", **labels, feature="amount"),
        "accuracy": operator.metric("modelpilot_model_accuracy", **labels),
        "slope": operator.metric("modelpilot_degradation_slope", **labels),
        "label drift p": operator.metric("modelpilot_label_drift_pvalue", **labels),
    }
    if evaluated != operator.metric("modelpilot_monitor_last_evaluation_timestamp_seconds", **labels):
        return None  # an evaluation came between
    if evaluated is None or abs(evaluated - datetime.fromisoformat(shown["lastEvaluation"]).timestamp()) > 1e-3:
        return None  # the status was written, its gauges not yet set (or the other way round)
    return gauges, shown


def test_drifting_model_gets_the_expected_conditions_events_metrics_and_columns(
    operator: OperatorProcess, drift_prometheus: PrometheusServer, namespace: str
) -> None:
    cluster = operator.cluster
    serving_deployment(cluster, namespace)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(drift_monitor(drift_prometheus.url)))

    first = wait_for(lambda: evaluated_after(cluster, namespace, None), timeout=90, what="the first evaluation")
    got = {c["type"]: c["status"] for c in first["conditions"]}
    # Its alert rules' condition depends on the cluster's CRDs and timing: test_owned_objects.py.
    assert got.pop("AlertRules", None) is not None
    assert got == DRIFT_EXPECTED["conditions"], json.dumps(first["conditions"], indent=1)
    features = {f["name"]: (f["verdict"], f["psiBand"]) for f in first["features"]}
    assert features == DRIFT_EXPECTED["features"]
    assert first["degradation"]["direction"] == DRIFT_EXPECTED["trend"]
    assert first["summary"]["drifted"] == "3/6"
    assert first["queries"] <= 16  # one per metric family and window, and its firing alerts; whatever the number of features
    degraded = next(c for c in first["conditions"] if c["type"] == "PerformanceDegraded")
    assert "amount" in degraded["message"].split("drifted features by effect size:")[1].split(",")[0]
    assert_data_quality_and_drift_details(first)

    # A second evaluation changes nothing, so it posts no Event: one per transition.
    wait_for(lambda: evaluated_after(cluster, namespace, first["lastEvaluation"]), timeout=60, what="a second evaluation")
    reasons = [e["reason"] for e in cluster.events(namespace, MONITOR)]
    for type_ in DRIFT_EXPECTED["conditions"]:
        assert sum(r.startswith(type_) for r in reasons) == 1, (type_, reasons)

    # The columns show the latest evaluation (the window moves with time): compare them with the
    # status they were printed from, one that did not change while kubectl read it.
    columns, shown = wait_for(lambda: columns_with_status(cluster, namespace), timeout=60, what="a steady status")
    assert columns["VERSION"] == "3" and columns["READY"] == "True" and columns["DRIFTED"] == "3/6"
    # Readable figures, the same as the numbers machines read: a percentage and a latency with its unit.
    summary = shown["summary"]
    assert columns["ACCURACY"] == summary["accuracyText"] and columns["ACCURACY"].endswith("%")
    assert float(columns["ACCURACY"].rstrip("%")) / 100 == pytest.approx(summary["accuracy"], abs=5e-4)
    assert columns["P99"] == summary["latencyP99Text"] and columns["P99"].endswith("ms")
    assert float(columns["P99"].removesuffix("ms")) / 1000 == pytest.approx(summary["latencyP99"], rel=5e-3)
    wide = cluster.kubectl("get", "mm", MONITOR, "-n", namespace, "-o", "wide").stdout.splitlines()
    errors = dict(zip(wide[0].split(), wide[1].split(), strict=True))["ERRORS"]
    assert errors.endswith("%") and float(errors.rstrip("%")) < 5

    # The gauges too, against the status of the same evaluation.
    labels = {"namespace": namespace, "monitor": MONITOR, "model": "fraud-detector"}
    gauges, shown = wait_for(lambda: gauges_with_status(operator, namespace, labels), timeout=60, what="steady gauges")
    assert gauges["amount drifted"] == 1.0 and gauges["distance drifted"] == 0.0
    amount = next(f for f in shown["features"] if f["name"] == "amount")
    assert gauges["amount psi"] == pytest.approx(amount["psi"])
    assert gauges["accuracy"] == pytest.approx(shown["summary"]["accuracy"])
    assert gauges["slope"] < 0
    assert gauges["label drift p"] < 0.05

    # The one-shot CLI on the same data and time gives the same verdicts.
    manifest = Path(drift_prometheus.workdir) / "monitor.yaml"
    manifest.write_text(yaml.safe_dump(drift_monitor(drift_prometheus.url)))
    result = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "check", "-f", str(manifest), "-o", "json", "--at", first["lastEvaluation"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr  # problems found
    report = json.loads(result.stdout)["status"]
    cli = {c["type"]: c["status"] for c in report["conditions"]}
    assert cli == {**DRIFT_EXPECTED["conditions"], "Healthy": "Unknown"}  # no cluster to read replicas from
    assert {f["name"]: (f["verdict"], f["psiBand"]) for f in report["features"]} == features

    # ADWIN instead of Page-Hinkley, on every label's outcome: the decline is a shift down, with its size.
    adwin = drift_monitor(drift_prometheus.url)
    adwin["spec"]["degradation"]["detector"] = "adwin"
    manifest.write_text(yaml.safe_dump(adwin))
    result = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "check", "-f", str(manifest), "-o", "json", "--at", first["lastEvaluation"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)["status"]
    concept = next(c for c in report["conditions"] if c["type"] == "ConceptDrift")
    assert (concept["status"], concept["reason"]) == ("True", "ChangePointDetected") and "ADWIN" in concept["message"]
    degradation = report["degradation"]
    # A steady decline is a run of shifts; the latest is from one level of the slope to a lower one.
    assert degradation["detector"] == "adwin" and len(degradation["changePoints"]) >= 1
    assert 0.84 < degradation["after"] < degradation["before"] <= 0.97 and degradation["magnitude"] < -0.005


def assert_data_quality_and_drift_details(shown: dict[str, Any]) -> None:
    """What the scenario put in: distance 10% missing over the last day (1% in the baseline),
    amount's mean moved from 0 to 1, the predicted classes' counts at 0.1 a second."""
    quality = {f["name"]: f for f in shown["dataQuality"]["features"]}
    assert abs(quality["distance"]["missingRate"] - 0.1) < 0.015
    assert all(f.get("missingRate", 0) < 0.01 for name, f in quality.items() if name != "distance")
    assert quality["merchant"]["unseenRate"] == 0 and quality["amount"]["outOfRangeRate"] < 0.01
    message = next(c["message"] for c in shown["conditions"] if c["type"] == "DataQuality")
    assert "distance: " in message and "% missing (limit 5.0%)" in message and "amount" not in message
    features = {f["name"]: f for f in shown["features"]}
    amount, distance = features["amount"], features["distance"]
    assert abs(amount["referenceMean"]) < 0.1 and abs(amount["currentMean"] - 1.0) < 0.1
    assert abs(distance["currentMean"] - distance["referenceMean"]) < 0.1
    assert amount["ksPvalue"] < 1e-6 and "ksPvalue" not in features["merchant"]
    counts = shown["labelDrift"]["currentCounts"]
    assert set(counts) == {"legit", "fraud", "review"} and abs(sum(counts.values()) - 8640) < 500
    assert counts["fraud"] / sum(counts.values()) == pytest.approx(0.2, abs=0.02)


def test_prometheus_outage_is_unknown_never_a_false_verdict_and_recovers(
    operator: OperatorProcess, drift_prometheus: PrometheusServer, namespace: str
) -> None:
    cluster = operator.cluster
    serving_deployment(cluster, namespace)
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(drift_monitor(drift_prometheus.url, interval="10s"))
    )
    good = wait_for(lambda: evaluated_after(cluster, namespace, None), timeout=90, what="the first evaluation")
    assert conditions(cluster, namespace)["DataDrift"] == ("True", "FeaturesDrifted")

    drift_prometheus.stop()
    try:
        seen: list[dict[str, tuple[str, str]]] = []

        def outage_reported() -> bool:
            seen.append(conditions(cluster, namespace))
            return seen[-1]["Ready"] == ("Unknown", "QueryFailed")

        wait_for(outage_reported, timeout=60, what="Ready=Unknown/QueryFailed")
        during = status(cluster, namespace)
        assert conditions(cluster, namespace)["DataDrift"] == ("Unknown", "QueryFailed")
        assert all(c["DataDrift"][0] != "False" and c["PerformanceDegraded"][0] != "False" for c in seen)
        assert during["features"] == good["features"]  # last good results kept
        assert during["consecutiveFailures"] >= 1
        message = next(c["message"] for c in during["conditions"] if c["type"] == "Ready")
        assert "cannot connect to Prometheus" in message
    finally:
        drift_prometheus.start()

    wait_for(lambda: conditions(cluster, namespace).get("Ready") == ("True", "Evaluated"), timeout=90, what="recovery")
    assert conditions(cluster, namespace)["DataDrift"] == ("True", "FeaturesDrifted")
    assert status(cluster, namespace)["consecutiveFailures"] == 0


def test_missing_deployment_and_bad_query_are_reported_not_crashed(
    operator: OperatorProcess, drift_prometheus: PrometheusServer, namespace: str
) -> None:
    cluster = operator.cluster
    manifest = drift_monitor(drift_prometheus.url, name=MONITOR)
    manifest["spec"]["metrics"] = {"overrides": {"requests": "sum by (status) (rate(model_requests_total{$selector}[$window]"}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    # An override that is not PromQL is refused before it reaches Prometheus.
    ready = wait_for(lambda: conditions(cluster, namespace).get("Ready"), timeout=60, what="Ready")
    assert ready == ("False", "InvalidSpec")

    # Valid PromQL that Prometheus refuses when it runs: the right side has two series (success
    # and error) for the one match group.
    failing = (
        "sum by (status) (increase(model_requests_total{$selector}[$window])) * on() group_left() model_requests_total{$selector}"
    )
    manifest["spec"]["metrics"] = {"overrides": {"requests": failing}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    wait_for(lambda: conditions(cluster, namespace).get("Ready", ("", ""))[1] == "QueryFailed", timeout=90, what="QueryFailed")
    got = conditions(cluster, namespace)
    assert got["ErrorRateHigh"] == ("Unknown", "QueryFailed")
    assert got["Healthy"] == ("Unknown", "DeploymentNotFound")
    assert got["DataDrift"] == ("True", "FeaturesDrifted")  # checks that do not need the bad query still run
    message = next(c["message"] for c in status(cluster, namespace)["conditions"] if c["type"] == "ErrorRateHigh")
    assert "many-to-many" in message
    assert operator.running


def test_reference_profile_in_mlflow_is_a_baseline(
    drift_prometheus: PrometheusServer, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    """`modelpilot profile` stores the training data's counts with the champion version;
    `modelpilot check` with drift.baseline.mlflowProfile compares the live window with it."""
    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.create_experiment("fraud-detector-training")
    registry = MlflowRegistry(mlflow_server.url)
    for _ in range(3):  # the served version is 3
        run = client.create_run(experiment)
        client.log_text(run.info.run_id, "model", "model/MLmodel")
        client.set_terminated(run.info.run_id)
        version = registry.register("fraud-detector", run.info.run_id, "model").version
    registry.set_alias("fraud-detector", "champion", version)

    training = training_sample(20000, seed=3)
    data = tmp_path / "train.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(training))
        writer.writerows(zip(*training.values()))
    bounds = tmp_path / "bounds.json"
    bounds.write_text(json.dumps(FEATURE_BUCKETS))
    cli = [sys.executable, "-m", "modelpilot.cli"]
    subprocess.run(
        [
            *cli,
            "profile",
            "--data",
            str(data),
            "--bounds",
            str(bounds),
            "--prediction-column",
            "predicted",
            "--model",
            "fraud-detector",
            "--version",
            version,
            "--tracking-uri",
            mlflow_server.url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )

    manifest = drift_monitor(drift_prometheus.url)
    manifest["spec"]["model"]["version"] = {"mlflow": {"registeredModel": "fraud-detector", "alias": "champion"}}
    manifest["spec"]["mlflow"] = {"trackingUri": mlflow_server.url}
    manifest["spec"]["drift"]["baseline"] = {"mlflowProfile": True}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = subprocess.run([*cli, "check", "-f", str(path), "-o", "json"], capture_output=True, text=True, timeout=120)
    report = json.loads(result.stdout)["status"]
    assert report["summary"]["version"] == "3"
    assert {f["name"]: (f["verdict"], f["psiBand"]) for f in report["features"]} == DRIFT_EXPECTED["features"]
    label = next(c for c in report["conditions"] if c["type"] == "LabelDrift")
    assert label["status"] == "True"

    # Moving the alias to a version without a profile blocks drift with a reason, not a verdict.
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "model", "model/MLmodel")
    registry.set_alias("fraud-detector", "champion", registry.register("fraud-detector", run.info.run_id, "model").version)
    result = subprocess.run([*cli, "check", "-f", str(path), "-o", "json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    drift = next(c for c in json.loads(result.stdout)["status"]["conditions"] if c["type"] == "DataDrift")
    assert (drift["status"], drift["reason"]) == ("Unknown", "NoReferenceProfile")
    assert "modelpilot profile" in drift["message"]
