"""RetrainPolicy end to end: a real API server, a real Prometheus behind a real ModelMonitor, a
real MLflow server, and the example trainer run as the Job's container (the test plays kubelet)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from modelpilot.sources.mlflow import MlflowRegistry
from tests.support.kube import Cluster, OperatorProcess, wait_for
from tests.support.kubelet import JobKubelet
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.mlflow_server import MlflowServer
from tests.support.prometheus import PrometheusServer


@pytest.fixture
def kubelet(operator: OperatorProcess, namespace: str, tmp_path: Path) -> Iterator[JobKubelet]:
    with JobKubelet(operator.cluster, namespace, tmp_path) as running:
        yield running


def seeded_version(mlflow_url: str, model: str, metrics: dict[str, float], tags: dict[str, str] | None = None) -> str:
    """A registered version whose run logged ``metrics``, with ``tags`` on the version."""
    client = MlflowClient(tracking_uri=mlflow_url)
    name = f"{model}-seed"
    experiment = client.get_experiment_by_name(name)
    run = client.create_run(experiment.experiment_id if experiment else client.create_experiment(name))
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.log_text(run.info.run_id, "model", "model/MLmodel")
    client.set_terminated(run.info.run_id)
    return MlflowRegistry(mlflow_url).register(model, run.info.run_id, "model", tags=tags).version


def champion(mlflow_url: str, model: str, metrics: dict[str, float]) -> str:
    """A registered champion version whose run logged ``metrics``."""
    version = seeded_version(mlflow_url, model, metrics)
    MlflowRegistry(mlflow_url).set_alias(model, "champion", version)
    return version


def policy(name: str, model: str, mlflow_url: str, triggers: dict[str, Any], **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": model,
        "monitorRef": {"name": "fraud-detector"},
        "mlflow": {"trackingUri": mlflow_url},
        "experiment": f"{model}-retraining",
        "triggers": triggers,
        "cooldown": "1h",
        "training": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "train",
                            "image": "example/trainer:1",
                            "command": ["python", "examples/trainer/train.py"],
                            "env": [{"name": "TRAINER_ROWS", "value": "3000"}],
                        }
                    ]
                }
            },
            "hyperparameters": {"strategy": "grid", "trials": 2, "space": {"learning_rate": [0.1, 0.3]}},
            "earlyStopping": {"patience": 2, "minDelta": 0.001},
        },
        "gate": {"primaryMetric": "f1", "minImprovement": 0.01, "tolerance": 0.02, "metrics": ["accuracy", "f1"]},
        "deployment": {
            "auto": True,
            "canaryTemplate": {
                "target": {"deployment": "fraud-detector"},
                "stepWeights": [20, 100],
                "analysis": {"prometheus": {"url": "http://127.0.0.1:9"}},
            },
        },
    }
    for key, value in changes.items():
        spec[key] = value
    return {"apiVersion": "modelpilot.dev/v1alpha1", "kind": "RetrainPolicy", "metadata": {"name": name}, "spec": spec}


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.get("retrainpolicies.modelpilot.dev", name, namespace).get("status", {})


def jobs(cluster: Cluster, namespace: str, policy_name: str) -> list[str]:
    listing = json.loads(
        cluster.kubectl("get", "jobs", "-n", namespace, "-l", f"modelpilot.dev/retrain-policy={policy_name}", "-o", "json").stdout
    )
    return sorted(j["metadata"]["name"] for j in listing["items"])


def monitor_evaluations(cluster: Cluster, namespace: str, count: int, after: str | None = None) -> str:
    """Wait until the monitor has evaluated ``count`` more times; returns the last time seen."""
    seen = after
    for _ in range(count):
        seen = wait_for(
            lambda seen=seen: (
                (t := cluster.get("mm", "fraud-detector", namespace).get("status", {}).get("lastEvaluation")) != seen and t
            ),
            timeout=60,
            what="a monitor evaluation",
        )
    return seen  # type: ignore[return-value]


def policy_took_in(cluster: Cluster, namespace: str, policy_name: str, evaluation: str) -> None:
    """Wait until the policy's triggers have looked at the monitor's evaluation at ``evaluation``
    (or a later one): only then can a check that the policy did nothing mean anything."""
    wanted = datetime.fromisoformat(evaluation)

    def seen() -> bool:
        last = status(cluster, namespace, policy_name).get("triggers", {}).get("lastMonitorEvaluation")
        return last is not None and datetime.fromisoformat(last) >= wanted

    wait_for(seen, timeout=60, what=f"policy {policy_name} to take in the monitor's evaluation at {evaluation}")


def test_degraded_monitor_retrains_once_registers_a_challenger_and_hands_it_to_a_canary(
    operator: OperatorProcess,
    drift_prometheus: PrometheusServer,
    mlflow_server: MlflowServer,
    namespace: str,
    kubelet: JobKubelet,
) -> None:
    cluster = operator.cluster
    serving_deployment(cluster, namespace)
    apply(cluster, namespace, drift_monitor(drift_prometheus.url, interval="5s"))
    model = "fraud-retrain-ok"
    old = champion(mlflow_server.url, model, {"accuracy": 0.6, "f1": 0.5})
    apply(
        cluster,
        namespace,
        policy(
            "fraud",
            model,
            mlflow_server.url,
            {
                "performance": {"metric": "accuracy", "threshold": 0.9, "sustainedEvaluations": 2},
            },
        ),
    )

    deploying = wait_for(
        lambda: (s := status(cluster, namespace, "fraud")).get("phase") == "Deploying" and s, timeout=180, what="Deploying"
    )
    assert deploying["lastTrigger"]["type"] == "performance"
    assert "for 2 evaluations" in deploying["lastTrigger"]["reason"]
    (job,) = jobs(cluster, namespace, "fraud")
    env = kubelet.jobs[job].env
    assert env["MODELPILOT_TRIGGER"] == "performance" and env["MLFLOW_TRACKING_URI"] == mlflow_server.url
    assert env["MODELPILOT_RUN_TAG"] == f"modelpilot.dev/retrain-run={job}"
    assert json.loads(env["MODELPILOT_HYPERPARAMETERS"])["space"] == {"learning_rate": [0.1, 0.3]}

    registry = MlflowRegistry(mlflow_server.url)
    challenger = registry.resolve_alias(model, "challenger")
    assert challenger is not None and challenger.version == deploying["candidateVersion"]
    assert challenger.tags["modelpilot.dev/trigger"] == "performance"
    assert deploying["championVersion"] == old
    f1 = next(c for c in deploying["comparison"] if c["metric"] == "f1")
    assert f1["champion"] == 0.5 and f1["passed"] and f1["change"] == pytest.approx(f1["challenger"] - 0.5, abs=1e-5)
    canary = cluster.get("crel", deploying["canary"], namespace)
    assert canary["spec"]["candidate"]["modelVersion"] == challenger.version
    assert canary["metadata"]["ownerReferences"][0]["name"] == "fraud"

    # Further degraded evaluations do not retrain again: the trigger fired once.
    policy_took_in(cluster, namespace, "fraud", monitor_evaluations(cluster, namespace, 3))
    assert jobs(cluster, namespace, "fraud") == [job]
    assert status(cluster, namespace, "fraud")["runs"] == 1


def test_candidate_worse_than_the_champion_is_not_deployed(
    operator: OperatorProcess, mlflow_server: MlflowServer, namespace: str, kubelet: JobKubelet
) -> None:
    cluster = operator.cluster
    model = "fraud-retrain-worse"
    champion(mlflow_server.url, model, {"accuracy": 0.99, "f1": 0.99})
    manifest = policy("fraud", model, mlflow_server.url, {})
    del manifest["spec"]["monitorRef"]
    apply(cluster, namespace, manifest)
    cli = [sys.executable, "-m", "modelpilot.cli"]
    subprocess.run([*cli, "retrain", "request", "fraud", "-n", namespace], check=True, env=cluster.env, capture_output=True)

    done = wait_for(
        lambda: (s := status(cluster, namespace, "fraud")).get("lastResult") == "Rejected" and s, timeout=120, what="Rejected"
    )
    assert "does not beat the champion's 0.99" in done["history"][-1]["message"]
    assert done["lastTrigger"]["type"] == "manual"
    assert cluster.kubectl("get", "crel", "-n", namespace, "-o", "name").stdout.strip() == ""
    history = subprocess.run(
        [*cli, "retrain", "history", "fraud", "-n", namespace], env=cluster.env, capture_output=True, text=True
    )
    assert "Rejected" in history.stdout and "manual" in history.stdout


def test_drift_trigger_fires_only_when_enough_features_drift(
    operator: OperatorProcess,
    drift_prometheus: PrometheusServer,
    mlflow_server: MlflowServer,
    namespace: str,
    kubelet: JobKubelet,
) -> None:
    cluster = operator.cluster
    serving_deployment(cluster, namespace)
    apply(cluster, namespace, drift_monitor(drift_prometheus.url, interval="5s"))
    # The scenario drifts amount (PSI ~0.95), age and merchant (~0.2 each).
    apply(
        cluster,
        namespace,
        policy("strict", "fraud-drift-a", mlflow_server.url, {"drift": {"psiThreshold": 0.25, "minFeatures": 2}}),
    )
    apply(
        cluster,
        namespace,
        policy("loose", "fraud-drift-b", mlflow_server.url, {"drift": {"psiThreshold": 0.15, "minFeatures": 3}}),
    )
    fired = wait_for(
        lambda: (s := status(cluster, namespace, "loose")).get("lastTrigger") and s, timeout=90, what="the drift trigger"
    )
    assert fired["lastTrigger"]["type"] == "drift"
    assert "age, amount, merchant" in fired["lastTrigger"]["reason"]
    policy_took_in(cluster, namespace, "strict", monitor_evaluations(cluster, namespace, 2))
    assert status(cluster, namespace, "strict").get("runs", 0) == 0
    assert jobs(cluster, namespace, "strict") == []


def test_schedule_fires_on_time_failing_jobs_are_retried_and_cooldown_holds(
    operator: OperatorProcess, mlflow_server: MlflowServer, namespace: str, kubelet: JobKubelet
) -> None:
    cluster = operator.cluster
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    manifest = policy(
        "nightly", "fraud-schedule", mlflow_server.url, {"schedule": {"interval": "15s", "startTime": start.isoformat()}}
    )
    del manifest["spec"]["monitorRef"]
    manifest["spec"]["cooldown"] = "40s"
    manifest["spec"]["training"]["retries"] = 1
    manifest["spec"]["training"]["template"]["spec"]["containers"][0]["env"].append({"name": "TRAINER_FAIL", "value": "1"})
    apply(cluster, namespace, manifest)

    failed = wait_for(
        lambda: (s := status(cluster, namespace, "nightly")).get("lastResult") == "Failed" and s, timeout=90, what="Failed"
    )
    first_fire = datetime.fromisoformat(failed["lastTrigger"]["time"].replace("Z", "+00:00"))
    assert first_fire >= start and failed["lastTrigger"]["type"] == "schedule"
    assert jobs(cluster, namespace, "nightly") == ["nightly-1-1", "nightly-1-2"]  # one retry
    assert "failed" in failed["history"][-1]["message"]
    finished = datetime.fromisoformat(failed["lastFinished"].replace("Z", "+00:00"))

    # Scheduled times inside the cooldown are skipped; the first one after it starts run 2.
    second = wait_for(lambda: "nightly-2-1" in jobs(cluster, namespace, "nightly"), timeout=120, what="run 2")
    assert second
    started = datetime.fromisoformat(status(cluster, namespace, "nightly")["lastTrigger"]["time"].replace("Z", "+00:00"))
    assert started >= finished + timedelta(seconds=40)
    assert status(cluster, namespace, "nightly")["runs"] == 2


def test_restarted_operator_adopts_the_running_job(
    operator: OperatorProcess, mlflow_server: MlflowServer, namespace: str, kubelet: JobKubelet
) -> None:
    cluster = operator.cluster
    champion(mlflow_server.url, "fraud-adopt", {"accuracy": 0.5, "f1": 0.4})
    manifest = policy("adopt", "fraud-adopt", mlflow_server.url, {"manual": {"request": "first"}})
    del manifest["spec"]["monitorRef"]
    kubelet.hold.clear()  # the training process finishes, but its Job stays Active until released
    apply(cluster, namespace, manifest)
    wait_for(lambda: "adopt-1-1" in kubelet.jobs and kubelet.jobs["adopt-1-1"].output, timeout=90, what="the training process")

    operator.kill()
    operator.start()
    # Two ticks of the fresh operator on the policy while its Job is still Active.
    ticked = {"kind": "RetrainPolicy", "namespace": namespace, "name": "adopt"}
    wait_for(
        lambda: (operator.metric("modelpilot_resource_ticks_total", **ticked) or 0) >= 2,
        timeout=60,
        what="two ticks of the restarted operator",
    )
    assert status(cluster, namespace, "adopt")["phase"] == "Training"
    assert jobs(cluster, namespace, "adopt") == ["adopt-1-1"]
    kubelet.hold.set()
    done = wait_for(
        lambda: (s := status(cluster, namespace, "adopt")).get("phase") == "Deploying" and s, timeout=120, what="Deploying"
    )
    assert jobs(cluster, namespace, "adopt") == ["adopt-1-1"]
    assert done["runs"] == 1 and done["candidateVersion"]


def test_a_promoted_version_below_the_rollback_floor_is_rolled_back_through_a_canary(
    operator: OperatorProcess, drift_prometheus: PrometheusServer, mlflow_server: MlflowServer, namespace: str
) -> None:
    cluster = operator.cluster
    serving_deployment(cluster, namespace)
    # The monitor measures version 3 at an accuracy of about 0.84 (the drift scenario).
    apply(cluster, namespace, drift_monitor(drift_prometheus.url, interval="5s"))
    guarded = policy("guarded", "fraud-guarded", mlflow_server.url, {}, rollback={"below": 0.9, "forEvaluations": 2})
    apply(cluster, namespace, guarded)
    wait_for(lambda: status(cluster, namespace, "guarded").get("observedGeneration"), timeout=60, what="the policy seen")
    # What the policy's own canary writes when it promotes version 3 over version 2.
    promoted = {"production": {"version": "3", "previous": "2", "since": "2020-01-01T00:00:00Z"}}
    cluster.kubectl(
        "patch", "rtp", "guarded", "-n", namespace, "--subresource=status", "--type=merge", "-p", json.dumps({"status": promoted})
    )

    rolling = wait_for(
        lambda: (s := status(cluster, namespace, "guarded")).get("production", {}).get("rollbackCanary") and s,
        timeout=90,
        what="a rollback",
    )
    assert rolling["production"]["rollbackCanary"] == "guarded-rollback-1"
    assert (
        "accuracy" in rolling["production"]["rollbackReason"]
        and "< 0.9 for 2 evaluations" in rolling["production"]["rollbackReason"]
    )
    canary = wait_for(
        lambda: cluster.kubectl("get", "crel", "guarded-rollback-1", "-n", namespace, "-o", "json", check=False).stdout,
        timeout=30,
        what="the rollback CanaryRelease",
    )
    spec = json.loads(canary)["spec"]
    assert spec["candidate"]["modelVersion"] == "2" and spec["stepWeights"] == [50, 100]
    assert spec["target"] == {"deployment": "fraud-detector"}
    assert json.loads(canary)["metadata"]["ownerReferences"][0]["name"] == "guarded"
    ready = next(c for c in status(cluster, namespace, "guarded")["conditions"] if c["type"] == "Ready")
    assert "rolling back to version 2" in ready["message"]
    assert "RollbackStarted" in [e["reason"] for e in cluster.events(namespace, "guarded")]
