"""The running operator admits every example: Ready and observedGeneration, or InvalidSpec naming the field."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import yaml

from modelpilot.reconcile.pod_policy import OPT_IN_LABEL
from modelpilot.reconcile.retrain import MANUAL_ANNOTATION
from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for
from tests.support.manifests import serving_deployment

PLURALS = {"ModelMonitor": "modelmonitors", "RetrainPolicy": "retrainpolicies", "CanaryRelease": "canaryreleases"}


def _ready(cluster: Cluster, plural: str, name: str, namespace: str, generation: int) -> dict[str, Any] | None:
    status = cluster.get(f"{plural}.modelpilot.dev", name, namespace).get("status", {})
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    if ready is None or status.get("observedGeneration") != generation:
        return None
    return ready


def test_operator_writes_ready_and_observed_generation_on_every_example(operator: OperatorProcess, namespace: str) -> None:
    cluster = operator.cluster
    documents = [d for p in sorted((REPO / "examples").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    for document in documents:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(document))
    for document in documents:
        plural, name = PLURALS[document["kind"]], document["metadata"]["name"]
        ready = wait_for(
            lambda plural=plural, name=name: _ready(cluster, plural, name, namespace, 1),
            timeout=60,
            what=f"Ready on {plural}/{name}",
        )
        assert ready["reason"] != "InvalidSpec", ready["message"]
        assert ready["observedGeneration"] == 1

    # A spec change bumps the generation; the operator follows it.
    cluster.kubectl("patch", "mm", "fraud-detector", "-n", namespace, "--type=merge", "-p", '{"spec":{"interval":"10m"}}')
    wait_for(lambda: _ready(cluster, "modelmonitors", "fraud-detector", namespace, 2), timeout=60, what="generation 2")


def test_spec_the_schema_allows_but_the_model_refuses_gets_invalidspec_and_a_warning(
    operator: OperatorProcess, namespace: str
) -> None:
    cluster = operator.cluster
    monitor = yaml.safe_load((REPO / "examples" / "modelmonitor.yaml").read_text())
    monitor["metadata"]["name"] = "typo-in-promql"
    monitor["spec"]["metrics"]["overrides"] = {"requests": 'sum(rate(model_requests_total{model="$modell"}[5m]))'}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(monitor))

    ready = wait_for(lambda: _ready(cluster, "modelmonitors", "typo-in-promql", namespace, 1), timeout=60, what="Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.metrics.overrides.requests" in ready["message"]
    assert "modell" in ready["message"]

    warnings = wait_for(
        lambda: [e for e in cluster.events(namespace, "typo-in-promql") if e["reason"] == "InvalidSpec"],
        timeout=30,
        what="InvalidSpec event",
    )
    assert warnings[0]["type"] == "Warning"

    # Fixing the spec clears the condition, and the operator is still serving.
    cluster.kubectl(
        "patch",
        "mm",
        "typo-in-promql",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/metrics/overrides"}]',
    )
    fixed = wait_for(lambda: _ready(cluster, "modelmonitors", "typo-in-promql", namespace, 2), timeout=60, what="fix")
    assert fixed["reason"] != "InvalidSpec"
    assert "modelpilot_resource_condition{" in operator.metrics()


def test_deleting_a_resource_never_waits_for_a_stopped_operator(operator: OperatorProcess, namespace: str) -> None:
    cluster = operator.cluster
    examples = yaml.safe_load_all((REPO / "examples" / "modelmonitor.yaml").read_text())
    monitor = next(d for d in examples if d and d["kind"] == "ModelMonitor")
    name = monitor["metadata"]["name"]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(monitor))
    # The operator has ticked this monitor (its Prometheus is not there: the evaluation says so).
    wait_for(
        lambda: cluster.get("modelmonitors.modelpilot.dev", name, namespace).get("status", {}).get("lastEvaluation"),
        timeout=60,
        what="the first evaluation",
    )
    assert not cluster.get("modelmonitors.modelpilot.dev", name, namespace)["metadata"].get("finalizers")
    # /healthz says how long ago the tick loop ran (liveness fails past 30s).
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5) as response:
        assert 0 <= json.load(response)["ticking"] < 30
    operator.stop()
    try:
        cluster.kubectl("delete", "mm", name, "-n", namespace, "--wait=true", "--timeout=30s")
        gone = cluster.kubectl("get", "mm", name, "-n", namespace, "--ignore-not-found", "-o", "name")
        assert gone.stdout.strip() == ""
    finally:
        operator.start()  # the operator serves the rest of the session


def test_pods_a_resource_would_run_need_the_operators_policy_and_the_deployments_consent(
    operator: OperatorProcess, namespace: str
) -> None:
    """A training template asking for the host's network starts no Job; a release of a Deployment
    that did not opt in creates no candidate. Both say why on Ready."""
    cluster = operator.cluster
    policy = yaml.safe_load((REPO / "examples" / "retrainpolicy.yaml").read_text())
    policy["metadata"]["annotations"] = {MANUAL_ANNOTATION: "now"}
    policy["spec"]["training"]["template"]["spec"]["hostNetwork"] = True
    release = yaml.safe_load((REPO / "examples" / "canaryrelease.yaml").read_text())
    serving_deployment(cluster, namespace)
    cluster.kubectl("label", "deployment", "fraud-detector", "-n", namespace, f"{OPT_IN_LABEL}-")
    release["spec"]["target"]["deployment"] = "fraud-detector"
    for document in (policy, release):
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(document))

    refused = wait_for(
        lambda: _ready(cluster, "retrainpolicies", policy["metadata"]["name"], namespace, 1), timeout=60, what="Ready"
    )
    assert (refused["status"], refused["reason"]) == ("False", "PodPolicyViolation"), refused
    assert "spec.training.template.spec.hostNetwork: host namespaces are not allowed" in refused["message"]
    not_opted_in = wait_for(
        lambda: _ready(cluster, "canaryreleases", release["metadata"]["name"], namespace, 1), timeout=60, what="Ready"
    )
    assert (not_opted_in["status"], not_opted_in["reason"]) == ("False", "StableNotOptedIn"), not_opted_in
    # Some ticks later still nothing was made (the policy ticks every 5 s, the release every 2 s).
    time.sleep(11)
    made = json.loads(cluster.kubectl("get", "jobs,deployments", "-n", namespace, "-o", "json").stdout)["items"]
    assert [(m["kind"], m["metadata"]["name"]) for m in made] == [("Deployment", "fraud-detector")]
