"""The Helm chart: it lints, refuses bad values by name, renders what the API server admits, is
what manifests/ holds, and installs, upgrades and uninstalls on the real API server."""

from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_manifests import DOCUMENTED, rights
from tests.support.chart_manifests import (
    CHART,
    GENERATED,
    MIRRORED,
    RELEASE_LABEL,
    expected_files,
    rendered_templates,
    without_release_label,
)
from tests.support.helm import Helm
from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.prometheus import PrometheusServer

# Its tests install cluster-wide objects (ClusterRoles, bindings, an admission policy) and share
# the fixtures that apply CRDs for them: one worker runs them all (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("helm-chart")

VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))
EVERYONE = "system:serviceaccount:default:nobody"
# What the operator's ClusterRole keeps when it watches a list of namespaces.
CLUSTER_SCOPED = {
    resource: DOCUMENTED[resource]
    for resource in ("customresourcedefinitions.apiextensions.k8s.io", "namespaces", "prometheuses.monitoring.coreos.com")
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def cluster_helm(helm: Helm, crds: Cluster) -> Helm:
    """helm against the test cluster, where modelpilot's CRDs and a ServiceMonitor CRD are."""
    # Server-side: one request whether or not it exists, so no create can race another.
    crds.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "tests" / "fixtures" / "helm" / "servicemonitor-crd.yaml")
    )
    crds.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com")
    return dataclasses.replace(helm, kubeconfig=crds.kubeconfig)


def create_namespaces(cluster: Cluster, count: int) -> list[str]:
    """Fresh namespaces outside every test operator's patterns."""
    names = [f"chart-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for name in names:
        cluster.kubectl("create", "namespace", name)
    return names


def documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document]


def deployment_args(cluster: Cluster, name: str, namespace: str) -> list[str]:
    return list(cluster.get("deployment", name, namespace)["spec"]["template"]["spec"]["containers"][0]["args"])


def beyond_everyone(cluster: Cluster, account: str, namespace: str) -> dict[str, set[str]]:
    """What ``account`` may do in ``namespace`` that every service account may not."""
    everyone = rights(cluster, EVERYONE, namespace)
    granted = {resource: verbs - everyone.get(resource, set()) for resource, verbs in rights(cluster, account, namespace).items()}
    return {resource: verbs for resource, verbs in granted.items() if verbs}


@pytest.mark.parametrize("values", [None, *VALUES_FILES], ids=lambda path: path.stem if path else "defaults")
def test_the_chart_lints_clean(helm: Helm, values: Path | None) -> None:
    result = helm("lint", "--strict", str(CHART), *(["--values", str(values)] if values else []))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("command", ["template", "lint"])
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("replicas=2", "at '/leaderElection/enabled': value must be true"),
        ("replicas=-1", "at '/replicas': minimum: got -1, want 0"),
        ("watch.namespaces={Team-A}", "at '/watch/namespaces/0': 'Team-A' does not match pattern"),
        ("allowedUrlPrefixes={ftp://mirror.example/}", "at '/allowedUrlPrefixes/0': 'ftp://mirror.example/' does not match"),
        ("podPolicy.trainingServiceAccounts=null", "at '/podPolicy': missing property 'trainingServiceAccounts'"),
        (
            "podDisruptionBudget.minAvailable=1,podDisruptionBudget.maxUnavailable=1",
            "at '/podDisruptionBudget/maxUnavailable': got number, want null",
        ),
        ("serviceMonitor.interval=soon", "at '/serviceMonitor/interval': 'soon' does not match pattern"),
        ("imageTag=0.2.0", "additional properties 'imageTag' not allowed"),
    ],
)
def test_bad_values_fail_naming_the_value(helm: Helm, command: str, setting: str, message: str) -> None:
    args = ["template", "release", str(CHART)] if command == "template" else ["lint", str(CHART)]
    result = helm(*args, "--set", setting, check=False)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


def test_manifests_are_what_the_chart_renders(helm: Helm) -> None:
    drifted = [
        str(path.relative_to(REPO))
        for path, text in expected_files(helm).items()
        if not path.exists() or path.read_text() != text
    ]
    assert not drifted, f"{drifted} differ from the chart: run python -m tests.support.chart_manifests"


@pytest.mark.parametrize("template", sorted(MIRRORED))
def test_hand_written_manifests_hold_the_charts_objects(helm: Helm, template: str) -> None:
    rendered = [without_release_label(document) for document in documents("---\n".join(rendered_templates(helm)[template]))]
    assert documents((REPO / MIRRORED[template]).read_text()) == rendered


def test_the_kustomize_base_lists_the_generated_files() -> None:
    base = REPO / "manifests" / "base"
    listed = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    generated = [Path(path).name for path in GENERATED.values() if Path(path).parent == base.relative_to(REPO)]
    assert sorted(listed) == sorted(["namespace.yaml", *generated])


def test_the_chart_holds_exactly_the_generated_crds() -> None:
    chart_crds = {path.name: path.read_text() for path in (CHART / "crds").iterdir()}
    assert chart_crds == {path.name: path.read_text() for path in (REPO / "crds").glob("*.yaml")}


def test_the_chart_ships_the_operator_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


def value_paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the values, down to lists, empty maps and scalars."""
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from value_paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_the_readme_table_documents_every_value() -> None:
    rows = {
        line.split("|")[1].strip().strip("`") for line in (CHART / "README.md").read_text().splitlines() if line.startswith("| `")
    }
    paths = set(value_paths(yaml.safe_load((CHART / "values.yaml").read_text())))
    undocumented = {path for path in paths if not any(path == row or path.startswith(f"{row}.") for row in rows)}
    unknown = {row for row in rows if not any(path == row or path.startswith(f"{row}.") for path in paths)}
    assert (undocumented, unknown) == (set(), set())


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda path: path.stem)
def test_the_rendered_chart_is_admitted_by_the_api_server(cluster_helm: Helm, crds: Cluster, values: Path) -> None:
    watched = yaml.safe_load(values.read_text()).get("watch", {}).get("namespaces", [])
    for name in ("chart-ci", *watched):
        # Fixed names (the values files name them): the second parametrized run finds them.
        crds.kubectl("create", "namespace", name, check=False)
    rendered = cluster_helm("template", "ci", str(CHART), "--namespace", "chart-ci", "--values", str(values)).stdout
    applied = crds.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered).stdout.splitlines()
    assert len(applied) == len(documents(rendered))
    assert all(line.endswith("(server dry run)") for line in applied)


def test_install_upgrade_and_uninstall_leave_only_the_crds(cluster_helm: Helm, crds: Cluster, namespace: str) -> None:
    release = f"mp-{uuid.uuid4().hex[:6]}"
    # Every optional object but the admission policy: bound cluster-wide, it would judge the other
    # tests' RetrainPolicies while installed (the namespace-list test installs it, confined).
    settings = "serviceMonitor.enabled=true,podDisruptionBudget.enabled=true,podPolicy.admissionPolicy=false"
    cluster_helm("install", release, str(CHART), "--namespace", namespace, "--set", settings)
    objects = documents(cluster_helm("get", "manifest", release, "--namespace", namespace).stdout)
    kinds = {document["kind"] for document in objects}
    assert {"Deployment", "ClusterRole", "ClusterRoleBinding", "ServiceMonitor", "PodDisruptionBudget"} <= kinds
    # Every object is in the release's namespace or cluster-scoped (where -n is ignored).
    for document in objects:
        stored = crds.kubectl("get", document["kind"], document["metadata"]["name"], "-n", namespace, "-o", "json").stdout
        assert json.loads(stored)["metadata"]["labels"][RELEASE_LABEL] == release

    fullname = f"{release}-modelpilot"
    assert "--all-namespaces" in deployment_args(crds, fullname, namespace)
    cluster_helm(
        "upgrade", release, str(CHART), "--namespace", namespace, "--reuse-values",
        "--set", "allowedUrlPrefixes={https://prometheus.monitoring.svc:9090/}",
    )  # fmt: skip
    assert "--allowed-url-prefix=https://prometheus.monitoring.svc:9090/" in deployment_args(crds, fullname, namespace)
    history = yaml.safe_load(cluster_helm("history", release, "--namespace", namespace, "-o", "yaml").stdout)
    assert [(entry["revision"], entry["status"]) for entry in history] == [(1, "superseded"), (2, "deployed")]

    cluster_helm("uninstall", release, "--namespace", namespace, "--wait")
    left = [
        document["metadata"]["name"]
        for document in objects
        if crds.kubectl(
            "get", document["kind"], document["metadata"]["name"], "-n", namespace, "--ignore-not-found", "-o", "name"
        ).stdout.strip()
    ]
    assert left == []
    # Helm never deletes what a chart's crds/ installed: resources of every release would go with them.
    assert crds.kubectl("get", "crd", "modelmonitors.modelpilot.dev", "-o", "name").stdout.strip()


def aggregated_into(cluster: Cluster, role: str, release: str) -> set[str]:
    """The release's ClusterRoles that the built-in ``role``'s aggregation rule selects."""
    rule = json.loads(cluster.kubectl("get", "clusterrole", role, "-o", "json").stdout)["aggregationRule"]
    selected: set[str] = set()
    for selector in rule["clusterRoleSelectors"]:
        labels = ",".join(f"{key}={value}" for key, value in {**selector["matchLabels"], RELEASE_LABEL: release}.items())
        selected.update(cluster.kubectl("get", "clusterroles", "-l", labels, "-o", "name").stdout.split())
    return selected


@contextmanager
def release_installed(helm: Helm, namespace: str, settings: str) -> Iterator[str]:
    """A release of the chart in ``namespace`` with ``--set settings``; uninstalled afterwards."""
    release = f"mp-{uuid.uuid4().hex[:6]}"
    helm("install", release, str(CHART), "--namespace", namespace, "--set", settings)
    try:
        yield release
    finally:
        helm("uninstall", release, "--namespace", namespace, "--wait")


def test_view_edit_and_admin_aggregate_the_charts_roles(cluster_helm: Helm, crds: Cluster, namespace: str) -> None:
    with release_installed(cluster_helm, namespace, "podPolicy.admissionPolicy=false") as release:
        prefix = f"clusterrole.rbac.authorization.k8s.io/{release}-modelpilot"
        assert aggregated_into(crds, "view", release) == {f"{prefix}-view"}
        assert aggregated_into(crds, "edit", release) == {f"{prefix}-edit"}
        assert aggregated_into(crds, "admin", release) == {f"{prefix}-edit"}


def retrain_policy(service_account: str) -> str:
    policy = copy.deepcopy(yaml.safe_load((REPO / "examples" / "retrainpolicy.yaml").read_text()))
    policy["spec"]["training"]["template"]["spec"]["serviceAccountName"] = service_account
    return yaml.safe_dump(policy)


def refusal(cluster: Cluster, namespace: str, service_account: str) -> str | None:
    """The API server's refusal of a RetrainPolicy training as ``service_account``; None when admitted."""
    applied = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=retrain_policy(service_account), check=False
    )
    return applied.stderr if applied.returncode != 0 else None


def first_refusal(cluster: Cluster, namespace: str, service_account: str, release: str) -> str:
    """The refusal of ``service_account`` by the release's policy, once the API server enforces it
    (within seconds; a policy uninstalled just before may still answer until then)."""
    policy = f"ValidatingAdmissionPolicy '{release}-modelpilot-training-pods'"

    def by_the_release() -> str | None:
        refused = refusal(cluster, namespace, service_account)
        return refused if refused is not None and policy in refused else None

    return wait_for(by_the_release, timeout=60, what=f"{policy} to judge")


def test_a_namespace_list_confines_the_operator_to_those_namespaces(cluster_helm: Helm, crds: Cluster) -> None:
    home, watched, other = create_namespaces(crds, 3)
    settings = f"watch.namespaces={{{watched}}},podPolicy.trainingServiceAccounts={{trainer}}"
    with release_installed(cluster_helm, home, settings) as release:
        fullname = f"{release}-modelpilot"
        account = f"system:serviceaccount:{home}:{fullname}"
        assert beyond_everyone(crds, account, watched) == DOCUMENTED
        assert beyond_everyone(crds, account, other) == CLUSTER_SCOPED
        args = deployment_args(crds, fullname, home)
        assert [arg for arg in args if arg.startswith(("--namespace", "--all-namespaces", "--training"))] == [
            f"--namespace={watched}",
            "--training-service-account=trainer",
        ]
        refused = first_refusal(crds, watched, "deployer", release)
        assert "serviceAccountName: service account 'deployer' is not one the operator allows for training (trainer)" in refused
        assert refusal(crds, watched, "trainer") is None
        # Outside the watched namespaces no Job is ever made, so nothing is refused.
        assert refusal(crds, other, "deployer") is None
    assert crds.kubectl("get", "role", fullname, "-n", watched, "--ignore-not-found", "-o", "name").stdout == ""
    crds.kubectl("delete", "namespace", home, watched, other, "--wait=false")


def test_the_admission_policy_judges_again_after_a_reinstall(cluster_helm: Helm, crds: Cluster) -> None:
    """The allowed accounts are written into the policy: a ConfigMap parameter, which an API server
    forgets between an uninstall and an install, would turn every answer into "no params found"."""
    home, watched = create_namespaces(crds, 2)
    for _ in range(2):
        with release_installed(cluster_helm, home, f"watch.namespaces={{{watched}}}") as release:
            refused = first_refusal(crds, watched, "deployer", release)
            assert "service account 'deployer' is not one the operator allows for training (default)" in refused
    crds.kubectl("delete", "namespace", home, watched, "--wait=false")


def test_the_operator_runs_on_a_namespace_lists_rights_alone(
    cluster_helm: Helm, crds: Cluster, drift_prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """The operator, with the chart Deployment's flags and the token of its service account,
    takes the Lease, admits and evaluates a monitor in the one namespace it watches: the Roles and
    the cluster-scoped reads are all it needs."""
    home, watched = create_namespaces(crds, 2)
    settings = f"watch.namespaces={{{watched}}},leaderElection.enabled=true,podPolicy.admissionPolicy=false"
    with release_installed(cluster_helm, home, settings) as release:
        fullname = f"{release}-modelpilot"
        restricted = crds.as_service_account(fullname, home, tmp_path)
        # The Deployment's flags, less the ones the test process sets itself (a pod finds its
        # namespace, the Lease's, in its service account's mount).
        own = ("run", "--namespace", "--all-namespaces", "--metrics-port", "--liveness-port")
        flags = [arg for arg in deployment_args(crds, fullname, home) if not arg.startswith(own)]
        serving_deployment(crds, watched)
        monitor = drift_monitor(drift_prometheus.url, name="confined")
        crds.kubectl("apply", "-n", watched, "-f", "-", input=yaml.safe_dump(monitor))
        extra_args = [*flags, f"--leader-election-namespace={home}"]
        with OperatorProcess(restricted, tmp_path, namespaces=[watched], extra_args=extra_args) as operator:

            def evaluated() -> dict[str, Any] | None:
                conditions = crds.get("mm", "confined", watched).get("status", {}).get("conditions", [])
                return next((c for c in conditions if c["type"] == "Ready" and c["reason"] == "Evaluated"), None)

            ready = wait_for(evaluated, timeout=90, what="an evaluation by the confined operator")
            assert ready["status"] == "True"
            # Events follow the status write: the evaluation's first transitions are posted too.
            wait_for(lambda: crds.events(watched, "confined"), timeout=30, what="the confined operator's Events")
            # The Lease taken is renewed, not only created: the leader may keep it.
            taken = crds.get("lease", fullname, home)["spec"]
            wait_for(
                lambda: crds.get("lease", fullname, home)["spec"]["renewTime"] != taken["renewTime"],
                timeout=30,
                what="the leader to renew its Lease",
            )
            assert "Forbidden" not in operator.log_tail(400)
    crds.kubectl("delete", "namespace", home, watched, "--wait=false")


def test_an_upgrade_keeps_every_resource_and_its_status_and_goes_on_reconciling(
    cluster_helm: Helm, crds: Cluster, drift_prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """The upgrade the chart README describes: CRDs applied from the new release's crds/ (Helm
    never upgrades them), then `helm upgrade`; the operator of the new revision takes over the
    resources the old one wrote, with their spec and status as they were."""
    home, watched = create_namespaces(crds, 2)
    release = f"mp-{uuid.uuid4().hex[:6]}"
    fullname = f"{release}-modelpilot"
    settings = f"watch.namespaces={{{watched}}},podPolicy.admissionPolicy=false"
    cluster_helm("install", release, str(CHART), "--namespace", home, "--set", settings)
    serving_deployment(crds, watched)
    crds.kubectl("apply", "-n", watched, "-f", "-", input=yaml.safe_dump(drift_monitor(drift_prometheus.url, name="kept")))

    def operator_of_the_revision(directory: Path) -> OperatorProcess:
        restricted = crds.as_service_account(fullname, home, directory)
        own = ("run", "--namespace", "--all-namespaces", "--metrics-port", "--liveness-port")
        flags = [arg for arg in deployment_args(crds, fullname, home) if not arg.startswith(own)]
        return OperatorProcess(restricted, directory, namespaces=[watched], extra_args=flags)

    def status() -> dict[str, Any]:
        return crds.get("mm", "kept", watched).get("status", {})

    first, second = tmp_path / "revision-1", tmp_path / "revision-2"
    first.mkdir()
    second.mkdir()
    with operator_of_the_revision(first):
        wait_for(lambda: status().get("lastEvaluation"), timeout=90, what="an evaluation by revision 1")
    before = crds.get("mm", "kept", watched)

    crds.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    cluster_helm(
        "upgrade", release, str(CHART), "--namespace", home, "--reuse-values",
        "--set", f"allowedUrlPrefixes={{{drift_prometheus.url}}}",
    )  # fmt: skip
    assert f"--allowed-url-prefix={drift_prometheus.url}" in deployment_args(crds, fullname, home)
    upgraded = crds.get("mm", "kept", watched)
    assert upgraded["spec"] == before["spec"] and upgraded["status"] == before["status"]

    with operator_of_the_revision(second):
        wait_for(
            lambda: status()["lastEvaluation"] > before["status"]["lastEvaluation"],
            timeout=90,
            what="an evaluation by revision 2",
        )

    def ready(conditions: list[dict[str, Any]]) -> tuple[str, str, str]:
        found = next(c for c in conditions if c["type"] == "Ready")
        return found["status"], found["reason"], found["lastTransitionTime"]

    # Ready did not move: the new revision went on from the old one's status, not anew.
    assert ready(status()["conditions"]) == ready(before["status"]["conditions"])
    cluster_helm("uninstall", release, "--namespace", home, "--wait")
    crds.kubectl("delete", "namespace", home, watched, "--wait=false")
