"""The deployment manifests apply, and their RBAC is enough for the operator and no more."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.prometheus import PrometheusServer

ACCOUNT = "system:serviceaccount:modelpilot-system:modelpilot"


# What the README says the operator may do (beyond what every account may).
DOCUMENTED = {
    "customresourcedefinitions.apiextensions.k8s.io": {"get", "list", "watch"},
    "namespaces": {"get", "list", "watch"},
    "modelmonitors.modelpilot.dev": {"get", "list", "watch", "patch"},
    "retrainpolicies.modelpilot.dev": {"get", "list", "watch", "patch"},
    "canaryreleases.modelpilot.dev": {"get", "list", "watch", "patch", "create"},
    "modelmonitors.modelpilot.dev/status": {"get", "patch"},
    "retrainpolicies.modelpilot.dev/status": {"get", "patch"},
    "canaryreleases.modelpilot.dev/status": {"get", "patch"},
    "events": {"create"},
    "events.events.k8s.io": {"create"},
    "deployments.apps": {"get", "create", "patch"},
    "services": {"get", "create", "patch"},
    "jobs.batch": {"get", "create"},
    "secrets": {"get"},
    "httproutes.gateway.networking.k8s.io": {"get", "patch"},
    "virtualservices.networking.istio.io": {"get", "patch"},
}
RIGHT = re.compile(r"^(\S+)\s+\[[^\]]*\]\s+\[[^\]]*\]\s+\[([^\]]*)\]\s*$")


def rights(cluster: Cluster, account: str, namespace: str) -> dict[str, set[str]]:
    """`kubectl auth can-i --list` as resource -> verbs (resource rows only)."""
    listed = cluster.kubectl("auth", "can-i", "--list", "-n", namespace, f"--as={account}").stdout.splitlines()[1:]
    return {m.group(1): set(m.group(2).split()) for line in listed if (m := RIGHT.match(line))}


def test_the_operator_may_do_exactly_what_the_readme_says(installed: Cluster, namespace: str) -> None:
    granted = rights(installed, ACCOUNT, namespace)
    everyone = rights(installed, "system:serviceaccount:default:nobody", namespace)
    assert granted.get("secrets") == {"get"}  # the listing was read: a known right is there
    beyond = {resource: verbs - everyone.get(resource, set()) for resource, verbs in granted.items()}
    assert {resource: verbs for resource, verbs in beyond.items() if verbs} == DOCUMENTED


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
