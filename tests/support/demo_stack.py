"""The services `make demo` tells its story on, all real and local: the control plane, a Prometheus
holding the model's history, an MLflow registry, the operator, the model servers and the training
Jobs (run by the tests' kubelets), live traffic, and a Prometheus that scrapes it and sends the
monitor's alerts to an Alertmanager routed to a local receiver."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient

from modelpilot.sources.mlflow import MlflowRegistry
from tests.support.alert_receiver import AlertReceiver
from tests.support.alertmanager import AlertmanagerServer
from tests.support.controlplane import ControlPlane
from tests.support.kube import REPO, Cluster, OperatorProcess, apply_crds, wait_for
from tests.support.kubelet import JobKubelet
from tests.support.mlflow_server import MlflowServer
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer
from tests.support.scenarios import drift_scenario
from tests.support.serving import DeploymentKubelet, load_example

__all__ = ["MODEL", "NAMESPACE", "STABLE", "DemoStack", "Traffic", "start_stack"]

NAMESPACE = "modelpilot-demo"
MODEL = "fraud-detector"
STABLE = "fraud-detector"  # the stable Deployment of examples/model_server/deployment.yaml
RPS = 30
# The registry before the story: versions 1 to 3 with the metrics their training runs logged;
# 3 is the champion, the version the history's metrics are labelled with.
PAST_VERSIONS = ({"accuracy": 0.82, "f1": 0.66}, {"accuracy": 0.84, "f1": 0.69}, {"accuracy": 0.85, "f1": 0.72})


@dataclass
class Traffic:
    """Where the load generator sends requests: split by ready replicas, as a Service would
    between the stable's pods and the current candidate's."""

    deployments: DeploymentKubelet
    candidate: str | None = None

    def __call__(self) -> dict[str, float]:
        candidate = self.deployments.ready(self.candidate) if self.candidate else 0
        return {"stable": self.deployments.ready(STABLE), "candidate": candidate}


@dataclass
class DemoStack:
    workdir: Path
    cluster: Cluster
    mlflow: MlflowServer
    history: PrometheusServer
    live: PrometheusServer
    operator: OperatorProcess
    receiver: AlertReceiver
    deployments: DeploymentKubelet
    jobs: JobKubelet
    traffic: Traffic
    load: Any  # examples/model_server/loadgen.py's LoadGenerator
    started: dict[str, float] = field(default_factory=dict)

    @property
    def registry(self) -> MlflowRegistry:
        return MlflowRegistry(self.mlflow.url)

    def champion(self) -> str:
        found = self.registry.resolve_alias(MODEL, "champion")
        return found.version if found else "none"

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.cluster.kubectl(*args, input=input).stdout

    def modelpilot(self, *args: str, input: str | None = None) -> str:
        """The `modelpilot` command against the demo's cluster."""
        return subprocess.run(
            [sys.executable, "-m", "modelpilot.cli", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.cluster.env,
            timeout=60,
            check=True,
        ).stdout


@contextlib.contextmanager
def _cluster(workdir: Path, say: Callable[[str], None]) -> Iterator[Cluster]:
    if os.environ.get("KUBECONFIG"):
        say(f"using the cluster of KUBECONFIG={os.environ['KUBECONFIG']}")
        yield Cluster(Path(os.environ["KUBECONFIG"]))
        return
    began = time.monotonic()
    with ControlPlane(workdir) as plane:
        say(f"kube-apiserver + etcd ready in {time.monotonic() - began:.1f}s (built from Go modules on first use)")
        yield Cluster(plane.kubeconfig)


def seed_registry(registry: MlflowRegistry, model: str, versions: tuple[Mapping[str, float], ...]) -> str:
    """Registers one version per entry (a finished run that logged those metrics and a model)
    and points `champion` at the last; returns its version."""
    client = MlflowClient(tracking_uri=registry.tracking_uri)
    quiet = contextlib.redirect_stdout(io.StringIO())  # the client prints a URL per finished run
    experiment = client.create_experiment(f"{model}-history")
    version = ""
    for metrics in versions:
        run = client.create_run(experiment)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        client.log_text(run.info.run_id, "flavors: {}\n", "model/MLmodel")
        with quiet:
            client.set_terminated(run.info.run_id)
        version = registry.register(model, run.info.run_id, "model").version
    registry.set_alias(model, "champion", version)
    return version


def alert_rules(workdir: Path, monitor: Mapping[str, Any]) -> Path:
    """The monitor's rules as `modelpilot alerts -f` prints them, in a rule file."""
    manifest = workdir / "monitor.yaml"
    manifest.write_text(yaml.safe_dump({**monitor, "metadata": {**monitor["metadata"], "namespace": NAMESPACE}}))
    version = monitor["spec"]["model"]["version"]["fixed"]
    command = [sys.executable, "-m", "modelpilot.cli", "alerts", "-f", str(manifest), "--version", version]
    rules = workdir / "rules.yaml"
    rules.write_text(subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout)
    return rules


def start_stack(workdir: Path, stack: ExitStack, monitor: Mapping[str, Any], say: Callable[[str], None]) -> DemoStack:
    """Starts everything, its stops pushed on ``stack``, saying what runs where; returns once
    live traffic flows. ``monitor`` is the ModelMonitor to be applied: its model version labels
    the history, and its alert rules are loaded into the live Prometheus."""
    cluster = stack.enter_context(_cluster(workdir, say))
    apply_crds(cluster)
    say("CRDs applied (generated from the API models)")

    scenario = drift_scenario(model=MODEL, version=monitor["spec"]["model"]["version"]["fixed"])
    history_file = workdir / "history.om"
    samples = scenario.history.write_openmetrics(history_file)
    history = PrometheusServer(workdir / "history", backfill=[history_file])
    mlflow = MlflowServer(workdir / "mlflow")
    receiver = stack.enter_context(AlertReceiver())
    alertmanager = AlertmanagerServer(workdir / "alertmanager", receiver.url)
    for service in (history, mlflow, alertmanager):
        stack.callback(service.stop)
    # Side by side: each mostly waits (promtool, MLflow's migrations, Alertmanager's start).
    with ThreadPoolExecutor(max_workers=3) as pool:
        for started in [pool.submit(s.start) for s in (history, mlflow, alertmanager)]:
            started.result()
    say(f"Prometheus with 60 days of history ({samples} samples; from day 30 accuracy falls, features drift): {history.url}")
    say(f"MLflow tracking server: {mlflow.url}")
    champion = seed_registry(MlflowRegistry(mlflow.url), MODEL, PAST_VERSIONS)
    say(f"registered versions 1-{champion} of {MODEL}; alias champion -> version {champion}")

    operator = stack.enter_context(OperatorProcess(cluster, workdir, namespaces=[NAMESPACE]))
    say(f"operator (modelpilot run --namespace={NAMESPACE}): /metrics on {operator.metrics_url}, log {operator.log_path}")

    ports = {"stable": free_port(), "candidate": free_port()}
    targets = {"model": [f"127.0.0.1:{p}" for p in ports.values()], "modelpilot": [operator.metrics_url.split("/")[2]]}
    rules = alert_rules(workdir, monitor)
    live = stack.enter_context(
        PrometheusServer(workdir / "live", scrape_targets=targets, rule_files=[rules], alertmanagers=[alertmanager.address])
    )
    say(
        f"Prometheus scraping the model servers and the operator every second, with the rules of "
        f"`modelpilot alerts -f monitor.yaml`: {live.url}; Alertmanager {alertmanager.address} -> receiver {receiver.url}"
    )

    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(REPO / "examples" / "model_server" / "deployment.yaml"))
    registry = MlflowRegistry(mlflow.url)

    def resolve(model: str, alias: str) -> str:
        found = registry.resolve_alias(model, alias)
        if found is None:
            raise RuntimeError(f"MLflow alias {alias} of {model} is not set")
        return found.version

    deployments = stack.enter_context(DeploymentKubelet(cluster.kubeconfig, NAMESPACE, ports, resolve, workdir))
    wait_for(lambda: deployments.ready(STABLE), timeout=60, what=f"the stable model server (log: {deployments.log})")
    jobs = stack.enter_context(JobKubelet(cluster, NAMESPACE, workdir))
    traffic = Traffic(deployments)
    loadgen = load_example("loadgen")
    load = loadgen.LoadGenerator({r: f"http://127.0.0.1:{p}" for r, p in ports.items()}, traffic, RPS, seed=7, model=MODEL)
    load.start(24 * 3600)
    stack.callback(load.stop)
    say(
        f"model server for Deployment {STABLE} (version {deployments.version(STABLE)}) on port {ports['stable']}, "
        f"candidates on {ports['candidate']}; {RPS} requests/s of live traffic split by ready replicas"
    )
    return DemoStack(workdir, cluster, mlflow, history, live, operator, receiver, deployments, jobs, traffic, load)
