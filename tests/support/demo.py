"""`make demo`: a local stack, the CRDs and examples, the operator, and what kubectl shows.

Starts the control plane (or uses KUBECONFIG) and a Prometheus holding 60 days of a fraud
model's metrics in which three features, the predicted classes and accuracy drift from day 30;
applies crds/ and examples/ into the `modelpilot-demo` namespace (the ModelMonitor pointed at
that Prometheus), plays kubelet for the model's Deployment, runs the operator, and prints
`kubectl get` and `kubectl describe` once the monitor has evaluated. Everything keeps running
until interrupted (Ctrl-C); then all it started is stopped. Pass --once to stop after printing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.support.controlplane import ControlPlane
from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for
from tests.support.manifests import serving_deployment
from tests.support.prometheus import PrometheusServer
from tests.support.scenarios import drift_scenario

NAMESPACE = "modelpilot-demo"


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


@contextlib.contextmanager
def cluster_for_demo(workdir: Path) -> Iterator[Cluster]:
    if os.environ.get("KUBECONFIG"):
        step(f"using the cluster of KUBECONFIG={os.environ['KUBECONFIG']}")
        yield Cluster(Path(os.environ["KUBECONFIG"]))
        return
    step("starting kube-apiserver + etcd (built from Go modules on first use)")
    started = time.monotonic()
    with ControlPlane(workdir) as plane:
        print(f"    ready in {time.monotonic() - started:.1f}s; kubeconfig: {plane.kubeconfig}", flush=True)
        yield Cluster(plane.kubeconfig)


def _all_ready(cluster: Cluster) -> bool:
    for plural in ("modelmonitors", "retrainpolicies", "canaryreleases"):
        listing = cluster.kubectl(
            "get",
            f"{plural}.modelpilot.dev",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={range .items[*]}{.status.observedGeneration}{' '}{end}",
        ).stdout.split()
        if not listing:
            return False
    evaluated = cluster.kubectl("get", "mm", "fraud-detector", "-n", NAMESPACE, "-o", "jsonpath={.status.lastEvaluation}").stdout
    return bool(evaluated)


def _examples_for(prometheus_url: str) -> str:
    """examples/ as applied here: the monitor and the canary read the demo Prometheus, whose history has a
    15-minute step, so its short windows are widened to hold samples and its baseline is
    the week before the drift."""
    documents = [d for p in sorted((REPO / "examples").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    for document in documents:
        if document["kind"] == "CanaryRelease":
            document["spec"]["analysis"]["prometheus"]["url"] = prometheus_url
        if document["kind"] == "ModelMonitor":
            spec = document["spec"]
            spec["prometheus"]["url"] = prometheus_url
            spec["interval"] = "30s"
            spec["performance"]["window"] = "1h"
            spec["drift"]["baseline"] = {"offset": "35d", "window": "7d"}
    return yaml.safe_dump_all(documents)


def run(once: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="modelpilot-demo-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        cluster = stack.enter_context(cluster_for_demo(workdir))
        kubectl = cluster.kubectl

        step("applying the CRDs generated from the API models")
        print(kubectl("apply", "-f", str(REPO / "crds")).stdout, end="")
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=modelpilot")

        step("backfilling 60 days of model metrics into a local Prometheus (drift from day 30)")
        scenario = drift_scenario()
        history = workdir / "history.om"
        samples = scenario.history.write_openmetrics(history)
        prometheus = stack.enter_context(PrometheusServer(workdir / "prometheus", backfill=[history]))
        print(f"    {samples} samples; Prometheus at {prometheus.url}", flush=True)

        step("starting the operator (modelpilot run)")
        operator = stack.enter_context(OperatorProcess(cluster, workdir))
        print(f"    /metrics on {operator.metrics_url}; log: {operator.log_path}", flush=True)

        step(f"applying examples/ into namespace {NAMESPACE}")
        kubectl("create", "namespace", NAMESPACE, check=False)
        serving_deployment(cluster, NAMESPACE)
        print(kubectl("apply", "-n", NAMESPACE, "-f", "-", input=_examples_for(prometheus.url)).stdout, end="")
        wait_for(lambda: _all_ready(cluster), timeout=120, what="the operator to admit and evaluate the examples")

        step(f"kubectl get mm,rtp,crel -n {NAMESPACE}")
        print(kubectl("get", "mm,rtp,crel", "-n", NAMESPACE, "-o", "wide").stdout, flush=True)
        step(f"kubectl describe mm fraud-detector -n {NAMESPACE}")
        print(kubectl("describe", "mm", "fraud-detector", "-n", NAMESPACE).stdout, flush=True)

        if once:
            return 0
        print(
            f"\nEverything keeps running. Try:\n  export KUBECONFIG={cluster.kubeconfig}\n"
            f"  {cluster.kubectl_binary} get modelpilot -n {NAMESPACE}\nPress Ctrl-C to stop.",
            flush=True,
        )
        while True:
            time.sleep(3600)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop after printing the output")
    args = parser.parse_args(argv)
    # SIGTERM stops the demo as Ctrl-C does, so the context managers stop every process.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args.once)
    except KeyboardInterrupt:
        print("\nstopping everything the demo started", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
