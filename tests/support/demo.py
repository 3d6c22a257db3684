"""`make demo`: a local stack, the CRDs and examples, the operator, and what kubectl shows.

Starts the control plane (or uses KUBECONFIG), applies crds/ and examples/ into the
`modelpilot-demo` namespace, runs the operator, prints `kubectl get` and `kubectl describe`,
then keeps everything running until interrupted (Ctrl-C), and stops all it started.
Pass --once to stop right after printing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from tests.support.controlplane import ControlPlane
from tests.support.kube import REPO, Cluster, OperatorProcess, wait_for

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
            "get", f"{plural}.modelpilot.dev", "-n", NAMESPACE,
            "-o", "jsonpath={range .items[*]}{.status.observedGeneration}{' '}{end}",
        ).stdout.split()
        if not listing:
            return False
    return True


def run(once: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="modelpilot-demo-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        cluster = stack.enter_context(cluster_for_demo(workdir))
        kubectl = cluster.kubectl

        step("applying the CRDs generated from the API models")
        print(kubectl("apply", "-f", str(REPO / "crds")).stdout, end="")
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=modelpilot")

        step("starting the operator (modelpilot run)")
        operator = stack.enter_context(OperatorProcess(cluster, workdir))
        print(f"    /metrics on {operator.metrics_url}; log: {operator.log_path}", flush=True)

        step(f"applying examples/ into namespace {NAMESPACE}")
        kubectl("create", "namespace", NAMESPACE, check=False)
        print(kubectl("apply", "-n", NAMESPACE, "-f", str(REPO / "examples")).stdout, end="")
        wait_for(lambda: _all_ready(cluster), timeout=60, what="the operator to admit every example")

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
