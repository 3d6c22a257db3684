"""`modelpilot versions` against a real MLflow server and API server: what the registry and
modelpilot's tags say about each version, and a rollback asked for by hand that goes through the
RetrainPolicy's guard path."""

from __future__ import annotations

import json
import subprocess
import sys

from modelpilot.reconcile.retrain import GATE_DETAIL_TAG, GATE_TAG, PRODUCTION_TAG_PREFIX, SERVED_TAG, TRIGGER_TAG
from modelpilot.sources.mlflow import MlflowRegistry
from tests.integration.test_retrain_policy import apply, policy, seeded_version, status
from tests.support.kube import OperatorProcess, wait_for
from tests.support.mlflow_server import MlflowServer


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "versions", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_versions_list_describe_and_compare_show_training_gate_and_production(mlflow_server: MlflowServer) -> None:
    model = "fraud-versions"
    old = seeded_version(
        mlflow_server.url,
        model,
        {"accuracy": 0.91, "f1": 0.88},
        {
            TRIGGER_TAG: "schedule",
            GATE_TAG: "passed",
            SERVED_TAG: "2026-01-01T00:00:00+00:00 to 2026-02-01T00:00:00+00:00 (40 evaluations)",
            f"{PRODUCTION_TAG_PREFIX}accuracy": "0.9",
        },
    )
    new = seeded_version(
        mlflow_server.url,
        model,
        {"accuracy": 0.94, "f1": 0.9},
        {TRIGGER_TAG: "performance", GATE_TAG: "passed", GATE_DETAIL_TAG: "f1 0.9 (+0.02)"},
    )
    MlflowRegistry(mlflow_server.url).set_alias(model, "champion", new)
    uri = ("--tracking-uri", mlflow_server.url)

    listed = cli("list", model, *uri)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [r[0] for r in rows] == [new, old]  # newest first
    assert rows[0][1] == "champion" and rows[0][4:] == ["performance", "passed", "0.94", "serving"]
    assert rows[1][1] == "-" and rows[1][4:] == ["schedule", "passed", "0.91", "0.9"]

    described = cli("describe", model, new, *uri)
    assert described.returncode == 0, described.stderr
    assert "gate:     passed (f1 0.9 (+0.02))" in described.stdout and "served:   serving now" in described.stdout

    compared = cli("compare", model, old, new, *uri)
    assert compared.returncode == 0, compared.stderr
    accuracy = next(line.split() for line in compared.stdout.splitlines() if line.split()[:2] == ["training", "accuracy"])
    assert accuracy[2:] == ["0.91", "0.94", "+0.03"]

    missing = cli("describe", "no-such-model", "1", *uri)
    assert missing.returncode == 1 and "no-such-model" in missing.stderr and "Traceback" not in missing.stderr


def test_a_rollback_asked_by_hand_goes_through_the_policys_canary_path(
    operator: OperatorProcess, mlflow_server: MlflowServer, namespace: str
) -> None:
    cluster = operator.cluster
    apply(cluster, namespace, policy("handy", "fraud-handy", mlflow_server.url, {}))
    wait_for(lambda: status(cluster, namespace, "handy").get("observedGeneration"), timeout=60, what="the policy seen")
    promoted = {"production": {"version": "3", "previous": "2", "since": "2026-01-01T00:00:00Z"}}
    cluster.kubectl(
        "patch", "rtp", "handy", "-n", namespace, "--subresource=status", "--type=merge", "-p", json.dumps({"status": promoted})
    )
    asked = cli("rollback", "fraud-handy", "--to", "1", "-n", namespace, env=cluster.env)
    assert asked.returncode == 0, asked.stderr
    assert "retrainpolicy/handy" in asked.stdout and "version 1" in asked.stdout

    canary = wait_for(
        lambda: cluster.kubectl("get", "crel", "handy-rollback-1", "-n", namespace, "-o", "json", check=False).stdout,
        timeout=60,
        what="the rollback CanaryRelease",
    )
    assert json.loads(canary)["spec"]["candidate"]["modelVersion"] == "1"
    assert "requested" in status(cluster, namespace, "handy")["production"]["rollbackReason"]

    nobody = cli("rollback", "no-policy-model", "-n", namespace, env=cluster.env)
    assert nobody.returncode == 1 and "found none" in nobody.stderr
