"""Fixtures that start the real services: the control plane, the CRDs, the operator."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.controlplane import ControlPlane
from tests.support.kube import REPO, Cluster, OperatorProcess
from tests.support.mlflow_server import MlflowServer
from tests.support.prometheus import PrometheusServer
from tests.support.scenarios import drift_scenario

CRD_NAMES = ("modelmonitors.modelpilot.dev", "retrainpolicies.modelpilot.dev", "canaryreleases.modelpilot.dev")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def cluster(workdir: Path) -> Iterator[Cluster]:
    """The user's cluster when KUBECONFIG is set, else a local kube-apiserver + etcd."""
    if os.environ.get("KUBECONFIG"):
        yield Cluster(Path(os.environ["KUBECONFIG"]))
        return
    with ControlPlane(workdir) as plane:
        yield Cluster(plane.kubeconfig)


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES))
    return cluster


@pytest.fixture(scope="session")
def route_crds(cluster: Cluster) -> Cluster:
    """Stand-ins for the HTTPRoute and VirtualService CRDs (tests/fixtures/route-crds.yaml)."""
    cluster.kubectl("apply", "-f", str(REPO / "tests" / "fixtures" / "route-crds.yaml"))
    names = ("httproutes.gateway.networking.k8s.io", "virtualservices.networking.istio.io")
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names))
    return cluster


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test. No namespace controller runs locally, so it is left behind."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    if os.environ.get("KUBECONFIG"):
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def operator(crds: Cluster, workdir: Path) -> Iterator[OperatorProcess]:
    with OperatorProcess(crds, workdir) as process:
        yield process


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server (sqlite, local artifacts) on a free loopback port."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="session")
def drift_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus holding tests.support.scenarios.drift_scenario: 60 days ending now."""
    workdir = tmp_path_factory.mktemp("prometheus-drift")
    history = workdir / "history.om"
    drift_scenario().history.write_openmetrics(history)
    with PrometheusServer(workdir / "server", backfill=[history]) as server:
        yield server
