"""kubectl against the test cluster, and the operator as a real process beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.controlplane import ensure_built, kubectl_path
from tests.support.ports import free_port
from tests.support.process import ServiceProcess, kill, spawn, terminate

__all__ = ["CRD_NAMES", "Cluster", "OperatorProcess", "REPO", "apply_crds", "apply_route_crds", "wait_for"]

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.5, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; raises TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Cluster:
    """A cluster reached through a kubeconfig, driven with the kubectl of the pinned release."""

    kubeconfig: Path
    kubectl_binary: Path = field(default_factory=lambda: (ensure_built(), kubectl_path())[1])

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.kubectl_binary), *args], input=input, capture_output=True, text=True, env=self.env, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
        return result

    def as_service_account(self, account: str, namespace: str, directory: Path) -> Cluster:
        """This cluster reached with a token of the service account ``namespace/account``, as its
        pod would be (the kubeconfig is written into ``directory``)."""
        token = self.kubectl("create", "token", account, "-n", namespace).stdout.strip()
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": account, "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = account
        kubeconfig = directory / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        return Cluster(kubeconfig, self.kubectl_binary)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        listing = json.loads(self.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
        return [e for e in listing["items"] if e["involvedObject"].get("name") == name]


CRD_NAMES = ("modelmonitors.modelpilot.dev", "retrainpolicies.modelpilot.dev", "canaryreleases.modelpilot.dev")
ROUTE_CRD_NAMES = ("httproutes.gateway.networking.k8s.io", "virtualservices.networking.istio.io")


def apply_crds(cluster: Cluster) -> None:
    """modelpilot's CRDs, established."""
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES))


def apply_route_crds(cluster: Cluster) -> None:
    """Stand-ins for the HTTPRoute and VirtualService CRDs (tests/fixtures/route-crds.yaml), established."""
    cluster.kubectl("apply", "-f", str(REPO / "tests" / "fixtures" / "route-crds.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in ROUTE_CRD_NAMES))


class OperatorProcess(ServiceProcess):
    """``modelpilot run`` as a real process against ``cluster``, with /metrics and /healthz on free
    ports, watching ``namespaces`` (kopf globs such as ``t-gw0-*``), or every namespace when none
    are given."""

    def __init__(
        self,
        cluster: Cluster,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        namespaces: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        name: str = "operator",
    ):
        self.cluster = cluster
        self.namespaces = list(namespaces)
        self.extra_args = list(extra_args)
        self.log_path = Path(workdir) / f"{name}.log"
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.extra_env = extra_env or {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The operator's process id while it runs (benchmarks read its memory from /proc)."""
        return self._process.pid if self.running else None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        log = self.log_path.open("ab")
        scope = [f"--namespace={n}" for n in self.namespaces] or ["--all-namespaces"]
        self._process = spawn(
            [
                sys.executable,
                "-m",
                "modelpilot.cli",
                "run",
                *scope,
                f"--metrics-port={self.metrics_port}",
                f"--liveness-port={self.liveness_port}",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**self.cluster.env, **self.extra_env, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        wait_for(self._alive, timeout=timeout, what=f"operator liveness (log: {self.log_path})")
        return self

    def _alive(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"operator exited with {self._process.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return response.read().decode()

    def metric(self, name: str, /, **labels: str) -> float | None:
        """The value of one sample of /metrics whose labels include ``labels``."""
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    return float(sample.value)
        return None

    def kill(self) -> None:
        """SIGKILL, as a crashed or evicted operator pod would end."""
        process, self._process = self._process, None
        if process is not None:
            kill(process)

    def stop(self, timeout: float = 20.0) -> None:
        process, self._process = self._process, None
        terminate(process, timeout)
