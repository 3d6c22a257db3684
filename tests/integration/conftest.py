"""Fixtures that start the real services: the control plane, the CRDs, the operator.

Under pytest-xdist the control plane, the MLflow server and the drift history come from the
controller (tests/conftest.py, through the environment); each worker names its namespaces after
itself and runs its own operator on them alone, so workers never act on each other's resources.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.controlplane import ControlPlane
from tests.support.kube import Cluster, OperatorProcess, apply_crds, apply_route_crds
from tests.support.mlflow_server import MlflowServer
from tests.support.prometheus import PrometheusServer
from tests.support.scenarios import drift_scenario
from tests.support.shared_stack import SHARED_DRIFT_BLOCKS, SHARED_MLFLOW_URL

# "gw0", "gw1", ... in an xdist worker; absent when one process runs every test.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
NAMESPACE_PREFIX = f"t-{WORKER}-" if WORKER else "t-"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)
        if item.path.name == "test_manifests.py":
            # Its module fixture installs cluster-wide RBAC: two workers applying it at once
            # race to create the same objects, so its tests share one worker (--dist loadgroup).
            item.add_marker(pytest.mark.xdist_group("cluster-rbac"))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def cluster(workdir: Path) -> Iterator[Cluster]:
    """The user's (or the xdist controller's) cluster when KUBECONFIG is set, else a local
    kube-apiserver + etcd."""
    if os.environ.get("KUBECONFIG"):
        yield Cluster(Path(os.environ["KUBECONFIG"]))
        return
    with ControlPlane(workdir) as plane:
        yield Cluster(plane.kubeconfig)


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    apply_crds(cluster)
    return cluster


@pytest.fixture(scope="session")
def route_crds(cluster: Cluster) -> Cluster:
    apply_route_crds(cluster)
    return cluster


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (the namespace controller empties it)."""
    name = f"{NAMESPACE_PREFIX}{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def unwatched_namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace no worker's own operator watches (theirs are t-<worker>-*), for tests
    that run operators of their own in it."""
    name = f"own-{WORKER or 'main'}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def operator(crds: Cluster, workdir: Path) -> Iterator[OperatorProcess]:
    # Only the tests' own namespaces: never a cluster's others, nor those of tests that start
    # operators of their own (leader election).
    namespaces = [f"{NAMESPACE_PREFIX}*"]
    with OperatorProcess(crds, workdir, namespaces=namespaces) as process:
        yield process


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server (sqlite, local artifacts) on a free loopback port."""
    workdir = tmp_path_factory.mktemp("mlflow")
    if shared := os.environ.get(SHARED_MLFLOW_URL):
        # The controller's server: this handle knows its port and never stops it.
        yield MlflowServer(workdir, port=urlsplit(shared).port)
        return
    with MlflowServer(workdir) as server:
        yield server


@pytest.fixture(scope="session")
def drift_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus holding tests.support.scenarios.drift_scenario: 60 days ending now.

    Each worker runs its own (a test stops it to play an outage); under xdist it starts on a copy
    of the blocks the controller backfilled once."""
    workdir = tmp_path_factory.mktemp("prometheus-drift")
    if shared := os.environ.get(SHARED_DRIFT_BLOCKS):
        shutil.copytree(shared, workdir / "server" / "data")
        backfill = []
    else:
        history = workdir / "history.om"
        drift_scenario().history.write_openmetrics(history)
        backfill = [history]
    with PrometheusServer(workdir / "server", backfill=backfill) as server:
        yield server
