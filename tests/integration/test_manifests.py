"""The deployment manifests apply, and their RBAC is enough for the operator and no more."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.prometheus import PrometheusServer

ACCOUNT = "system:serviceaccount:modelpilot-system:modelpilot"


def can(cluster: Cluster, verb: str, resource: str, namespace: str = "default") -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={ACCOUNT}", check=False)
    return result.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def installed(crds: Cluster) -> Cluster:
    crds.kubectl("apply", "-k", str(REPO / "manifests" / "base"))
    return crds


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("patch", "modelmonitors.modelpilot.dev/status"),
        ("watch", "canaryreleases.modelpilot.dev"),
        ("create", "canaryreleases.modelpilot.dev"),
        ("create", "jobs.batch"),
        ("create", "events"),
        ("patch", "deployments.apps"),
        ("get", "secrets"),
    ],
)
def test_the_operator_may_do_what_it_needs(installed: Cluster, verb: str, resource: str) -> None:
    assert can(installed, verb, resource)


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("delete", "modelmonitors.modelpilot.dev"),
        ("create", "modelmonitors.modelpilot.dev"),
        ("list", "secrets"),
        ("delete", "jobs.batch"),
        ("create", "pods"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("update", "modelmonitors.modelpilot.dev"),
    ],
)
def test_the_operator_may_not_do_more(installed: Cluster, verb: str, resource: str) -> None:
    assert not can(installed, verb, resource)


def test_the_operator_runs_on_its_service_account_alone(
    installed: Cluster, drift_prometheus: PrometheusServer, namespace: str, tmp_path: Path
) -> None:
    """The operator, logged in with the service account's token, admits and evaluates a monitor."""
    token = installed.kubectl("create", "token", "modelpilot", "-n", "modelpilot-system").stdout.strip()
    config = yaml.safe_load(installed.kubeconfig.read_text())
    config["users"] = [{"name": "modelpilot", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "modelpilot"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    serving_deployment(installed, namespace)
    installed.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(drift_monitor(drift_prometheus.url, name="rbac-check"))
    )
    restricted_cluster = Cluster(kubeconfig, installed.kubectl_binary)
    with OperatorProcess(restricted_cluster, tmp_path, namespaces=[namespace]) as restricted:
        ready = wait_for(
            lambda: next(
                (
                    c
                    for c in installed.get("mm", "rbac-check", namespace).get("status", {}).get("conditions", [])
                    if c["type"] == "Ready" and c["reason"] == "Evaluated"
                ),
                None,
            ),
            timeout=90,
            what="an evaluation by the restricted operator",
        )
        assert ready["status"] == "True"
        assert "Forbidden" not in restricted.log_tail(400)
