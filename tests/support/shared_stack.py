"""The services every integration test can share, started once for a run of several pytest-xdist
workers: the control plane with the CRDs, the MLflow server, and the drift scenario's history
backfilled into Prometheus blocks. Workers find them through the environment variables below."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from tests.support.controlplane import ControlPlane
from tests.support.kube import Cluster, apply_crds, apply_route_crds
from tests.support.mlflow_server import MlflowServer
from tests.support.prometheus import create_blocks
from tests.support.scenarios import drift_scenario

__all__ = ["SHARED_DRIFT_BLOCKS", "SHARED_MLFLOW_URL", "start_shared_stack"]

SHARED_MLFLOW_URL = "MODELPILOT_TEST_MLFLOW_URL"
# A TSDB data directory holding drift_scenario(); each worker starts its own Prometheus on a copy.
SHARED_DRIFT_BLOCKS = "MODELPILOT_TEST_DRIFT_BLOCKS"


def start_shared_stack(workdir: Path, stack: ExitStack) -> dict[str, str]:
    """Start the shared services under ``workdir``, their stops pushed on ``stack``; returns the
    environment that points workers at them (KUBECONFIG too, unless a cluster was given)."""
    plane = None if os.environ.get("KUBECONFIG") else ControlPlane(workdir)
    mlflow = MlflowServer(workdir / "mlflow")
    blocks = workdir / "drift-blocks"
    # Stopping a server that never started does nothing: the stops go in before the starts.
    stack.callback(mlflow.stop)
    if plane is not None:
        stack.callback(plane.stop)

    def cluster() -> None:
        shared = Cluster(plane.start().kubeconfig if plane is not None else Path(os.environ["KUBECONFIG"]))
        apply_crds(shared)
        apply_route_crds(shared)

    def drift_history() -> None:
        history = workdir / "drift.om"
        drift_scenario().history.write_openmetrics(history)
        create_blocks(history, blocks)
        history.unlink()

    # Side by side: each mostly waits (on the control plane's and MLflow's start-up, on promtool).
    with ThreadPoolExecutor(max_workers=3) as pool:
        for started in [pool.submit(cluster), pool.submit(mlflow.start), pool.submit(drift_history)]:
            started.result()
    environment = {SHARED_MLFLOW_URL: mlflow.url, SHARED_DRIFT_BLOCKS: str(blocks)}
    if plane is not None:
        environment["KUBECONFIG"] = str(plane.kubeconfig)
    return environment
