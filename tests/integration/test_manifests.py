"""The deployment manifests apply, and their RBAC is enough for the operator and no more."""

from __future__ import annotations

import copy
import functools
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.reconcile.pod_policy import PodPolicy
from tests.integration.test_retrain_policy import apply, champion, policy, status
from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for
from tests.support.kubelet import JobKubelet
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.mlflow_server import MlflowServer
from tests.support.pod_cases import ALLOWED_ACCOUNTS, POD_CASES
from tests.support.prometheus import PrometheusServer
from tests.unit.reconcile.test_retrain import BASE as RETRAIN_BASE

ACCOUNT = "system:serviceaccount:modelpilot-system:modelpilot"
POLICY = REPO / "manifests" / "policy"


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
    "prometheusrules.monitoring.coreos.com": {"get", "patch", "delete"},
    "configmaps": {"get", "patch", "delete"},
    "grafanadashboards.grafana.integreatly.org": {"get", "patch", "delete"},
    "prometheuses.monitoring.coreos.com": {"list"},
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


def test_the_operator_runs_every_kind_on_its_service_account_alone(
    installed: Cluster,
    drift_prometheus: PrometheusServer,
    mlflow_server: MlflowServer,
    unwatched_namespace: str,
    tmp_path: Path,
) -> None:
    """The operator, logged in with the service account's token, evaluates a monitor, trains,
    registers and hands a candidate to a canary, and rolls that canary back: the shipped rights
    are enough for every kind, and nothing it does is forbidden."""
    namespace = unwatched_namespace
    serving_deployment(installed, namespace)
    installed.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(drift_monitor(drift_prometheus.url, name="rbac-check"))
    )
    model = f"fraud-rbac-{uuid.uuid4().hex[:6]}"
    champion(mlflow_server.url, model, {"accuracy": 0.5, "f1": 0.4})
    training = policy("rbac", model, mlflow_server.url, {"manual": {"request": "first"}})
    del training["spec"]["monitorRef"]
    restricted_cluster = installed.as_service_account("modelpilot", "modelpilot-system", tmp_path)
    with (
        OperatorProcess(restricted_cluster, tmp_path, namespaces=[namespace]) as restricted,
        JobKubelet(installed, namespace, tmp_path),
    ):
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

        apply(installed, namespace, training)
        deploying = wait_for(
            lambda: (s := status(installed, namespace, "rbac")).get("phase") == "Deploying" and s,
            timeout=150,
            what="the policy to train, register and hand over",
        )
        canary = deploying["canary"]

        def phase() -> str | None:
            # The policy records the hand-over in status before it creates the canary.
            found = installed.kubectl("get", "crel", canary, "-n", namespace, "-o", "json", check=False)
            return json.loads(found.stdout).get("status", {}).get("phase") if found.returncode == 0 else None

        wait_for(lambda: phase() == "Initializing", timeout=60, what=f"the canary {canary} to start")
        installed.kubectl("patch", "crel", canary, "-n", namespace, "--type=merge", "-p", '{"spec":{"abort":true}}')
        wait_for(
            lambda: installed.get("crel", canary, namespace).get("status", {}).get("phase") == "RolledBack",
            timeout=60,
            what=f"the canary {canary} to roll back",
        )
        assert installed.get("deployment", f"{canary}-candidate", namespace)["spec"]["replicas"] == 0
        assert "Forbidden" not in restricted.log_tail(2000)


@pytest.fixture(scope="module")
def training_policy(installed: Cluster) -> Iterator[str]:
    """A namespace of its own where the shipped ValidatingAdmissionPolicy judges, with the test's
    allowed accounts written in (as the chart's podPolicy.trainingServiceAccounts would) and the
    shipped binding narrowed to that namespace (so no other test's policies on the shared cluster
    are judged by it); removed afterwards."""
    namespace = f"own-policy-{uuid.uuid4().hex[:8]}"
    installed.kubectl("create", "namespace", namespace)
    documents = {d["kind"]: d for d in yaml.safe_load_all((POLICY / "validatingadmissionpolicy.yaml").read_text())}
    policy, binding = documents["ValidatingAdmissionPolicy"], documents["ValidatingAdmissionPolicyBinding"]
    [accounts] = [v for v in policy["spec"]["variables"] if v["name"] == "accounts"]
    accounts["expression"] = json.dumps(list(ALLOWED_ACCOUNTS))
    binding["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    installed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    # The API server compiles a new policy in the background (slower on a loaded machine): wait
    # until it judges.
    deadline, answer = time.monotonic() + 180, ""
    while "hostNetwork" not in answer:
        if time.monotonic() > deadline:
            raise AssertionError(f"the admission policy never took effect; the last answer: {answer}")
        time.sleep(0.5)
        answer = dry_run_policy(installed, namespace, {"hostNetwork": True, "containers": []}) or "admitted"
    yield namespace
    installed.kubectl("delete", "-f", "-", "--ignore-not-found", input=yaml.safe_dump_all([policy, binding]))
    installed.kubectl("delete", "namespace", namespace, "--wait=false")


def dry_run_policy(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> str:
    """The API server's answer to a RetrainPolicy with this training pod spec ("" when admitted)."""
    spec = copy.deepcopy(RETRAIN_BASE)
    spec["training"]["template"] = {"spec": pod}
    body = {"apiVersion": "modelpilot.dev/v1alpha1", "kind": "RetrainPolicy", "metadata": {"name": "p"}, "spec": spec}
    result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    return "" if result.returncode == 0 else result.stderr


@pytest.mark.parametrize(("name", "pod", "field"), POD_CASES, ids=[case[0] for case in POD_CASES])
def test_the_admission_policy_and_the_operator_judge_training_pods_alike(
    training_policy: str, installed: Cluster, name: str, pod: dict[str, Any], field: str | None
) -> None:
    refused = dry_run_policy(installed, training_policy, pod)
    operator_says = PodPolicy(frozenset(ALLOWED_ACCOUNTS)).violations(pod, "spec.training.template.spec")
    assert bool(refused) == bool(operator_says) == (field is not None), refused
    if field is not None:
        # The policy names every element of a list, the operator the one at fault (and the
        # capabilities at fault, after a colon).
        path, why = operator_says[0].split(": ", 1)
        every_element = re.sub(r"\[\d+\]", "[*]", path)
        assert f"{every_element}: {why.split(':')[0]}" in refused


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        ("view", [("get", "modelmonitors"), ("list", "canaryreleases"), ("watch", "retrainpolicies")], ["create", "patch"]),
        ("edit", [("create", "canaryreleases"), ("patch", "retrainpolicies"), ("delete", "modelmonitors")], []),
        ("admin", [("create", "retrainpolicies"), ("get", "canaryreleases")], []),
    ],
)
def test_the_built_in_roles_carry_rights_on_the_kinds_by_aggregation(
    installed: Cluster, namespace: str, role: str, allowed: list[tuple[str, str]], refused: list[str]
) -> None:
    """A user bound to view, edit or admin in a namespace: the controller-manager folds the shipped
    aggregated ClusterRoles into those roles."""
    user = f"{role}-user-{namespace}"
    installed.kubectl("create", "rolebinding", f"{role}-user", f"--clusterrole={role}", f"--user={user}", "-n", namespace)

    def may(verb: str, resource: str) -> bool:
        answer = installed.kubectl(
            "auth", "can-i", verb, f"{resource}.modelpilot.dev", "-n", namespace, f"--as={user}", check=False
        )
        return answer.stdout.strip() == "yes"

    for verb, resource in allowed:
        wait_for(functools.partial(may, verb, resource), timeout=60, what=f"{role} to allow {verb} {resource}")
    for verb in refused:
        assert not may(verb, "modelmonitors")
    # The binding is the namespace's: elsewhere, nothing.
    other = installed.kubectl(
        "auth", "can-i", "get", "modelmonitors.modelpilot.dev", "-n", "default", f"--as={user}", check=False
    )
    assert other.stdout.strip() == "no"
