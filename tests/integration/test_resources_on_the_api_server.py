"""The CRDs and examples against the real API server: schemas, printer columns, refusals."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.kube import REPO, Cluster

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def resource_examples() -> list[dict]:
    docs = [d for path in EXAMPLES for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in docs if d["apiVersion"].startswith("modelpilot.dev/")]


def test_crds_are_established_with_names_and_categories(crds: Cluster) -> None:
    listing = json.loads(crds.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=modelpilot", "-o", "json").stdout)
    names = {item["spec"]["names"]["kind"]: item["spec"]["names"] for item in listing["items"]}
    assert set(names) == {"ModelMonitor", "RetrainPolicy", "CanaryRelease"}
    assert {tuple(n["shortNames"]) for n in names.values()} == {("mm",), ("rtp",), ("crel",)}
    assert all(n["categories"] == ["modelpilot"] for n in names.values())


def test_examples_apply_and_print_their_columns(crds: Cluster, namespace: str) -> None:
    for path in EXAMPLES:
        crds.kubectl("apply", "-n", namespace, "-f", str(path))
    table = crds.kubectl("get", "mm", "-n", namespace).stdout.splitlines()
    header = table[0].split()
    assert header[:4] == ["NAME", "MODEL", "VERSION", "READY"]
    assert {"ACCURACY", "P99", "DRIFTED", "AGE"} <= set(header)
    assert table[1].split()[:2] == ["fraud-detector", "fraud-detector"]
    wide = crds.kubectl("get", "crel", "-n", namespace, "-o", "wide").stdout.splitlines()[0].split()
    assert {"PHASE", "WEIGHT", "STEP", "CANDIDATE"} <= set(wide)
    everything = crds.kubectl("get", "modelpilot", "-n", namespace, "-o", "name").stdout.split()
    assert len(everything) == len(resource_examples())


def _refusal(cluster: Cluster, namespace: str, document: dict) -> str:
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(document), check=False)
    assert result.returncode != 0, f"the API server accepted {document['metadata']['name']}"
    return result.stderr


def _example(kind: str) -> dict:
    return next(d for d in resource_examples() if d["kind"] == kind)


def test_string_where_a_number_belongs_is_refused_naming_the_field(crds: Cluster, namespace: str) -> None:
    monitor = _example("ModelMonitor")
    monitor["metadata"]["name"] = "bad-threshold"
    monitor["spec"]["performance"]["latencyP99"] = "fast"
    message = _refusal(crds, namespace, monitor)
    assert "spec.performance.latencyP99" in message
    assert "number" in message


def test_descending_step_weights_are_refused_naming_the_field(crds: Cluster, namespace: str) -> None:
    canary = _example("CanaryRelease")
    canary["metadata"]["name"] = "bad-steps"
    canary["spec"]["stepWeights"] = [50, 25, 100]
    message = _refusal(crds, namespace, canary)
    assert "spec.stepWeights" in message
    assert "ascending" in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interval": "soon"}, "spec.interval"),
        ({"drift": {"alpha": 1.5}}, "spec.drift.alpha"),
        ({"metrics": {"preset": "unknown-server"}}, "spec.metrics.preset"),
    ],
)
def test_other_malformed_monitors_are_refused(crds: Cluster, namespace: str, change: dict, field: str) -> None:
    monitor = _example("ModelMonitor")
    monitor["metadata"]["name"] = "bad-monitor"
    monitor["spec"].update(change)
    assert field in _refusal(crds, namespace, monitor)
