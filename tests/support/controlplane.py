"""A real Kubernetes control plane for tests and the demo: etcd, kube-apiserver and
kube-controller-manager (ClusterRole aggregation, garbage collection, namespace deletion) in one process.

The binary is built from the Go module in tests/controlplane (pinned Kubernetes release) and
cached outside the repository, keyed by a hash of that module, so only the first run on a
machine pays for the build. Run ``python -m tests.support.controlplane build`` to build it ahead.
When ``KUBECONFIG`` is set, tests use that cluster instead and nothing is started.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.support.ports import free_port
from tests.support.process import ServiceProcess, spawn, terminate

__all__ = ["ControlPlane", "binary_path", "build_command", "ensure_built", "kubectl_path"]

MODULE_DIR = Path(__file__).resolve().parent.parent / "controlplane"


def cache_root() -> Path:
    return Path(os.environ.get("MODELPILOT_CACHE", Path.home() / ".cache" / "modelpilot"))


def _module_key() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((MODULE_DIR / name).read_bytes())
    release = next(
        line.split()[1]
        for line in (MODULE_DIR / "go.mod").read_text().splitlines()
        if line.strip().startswith("k8s.io/kubernetes ")
    )
    return f"{release}-{digest.hexdigest()[:12]}"


def binary_path() -> Path:
    return cache_root() / f"controlplane-{_module_key()}" / "controlplane"


def kubectl_path() -> Path:
    """kubectl of the same release: the control-plane binary answers to the name kubectl."""
    return binary_path().with_name("kubectl")


def ensure_built(*, quiet: bool = False) -> Path:
    """Build the control-plane binary unless the cache has it; returns its path."""
    binary = binary_path()
    if binary.exists() and kubectl_path().exists():
        return binary
    if shutil.which("go") is None:
        raise RuntimeError("building the test control plane needs Go (1.24 or newer) on PATH")
    binary.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(
            f"building kube-apiserver + kube-controller-manager + etcd + kubectl ({_module_key()}) into {binary.parent}; "
            "the first build downloads modules and compiles for several minutes",
            file=sys.stderr,
            flush=True,
        )
    started = time.monotonic()
    partial = binary.with_suffix(".partial")
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(partial), "."],
        cwd=MODULE_DIR,
        check=True,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    partial.rename(binary)
    link = kubectl_path()
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(binary.name)
    if not quiet:
        print(f"built in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return binary


class ControlPlane(ServiceProcess):
    """kube-apiserver + kube-controller-manager + etcd on free loopback ports, with a kubeconfig
    for an admin user."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.state_dir = self.workdir / "controlplane"
        self.log_path = self.workdir / "controlplane.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def start(self, timeout: float = 120.0) -> ControlPlane:
        binary = ensure_built()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = self.log_path.open("ab")
        self._process = spawn(
            [
                str(binary),
                "serve",
                f"--dir={self.state_dir}",
                f"--port={self.port}",
                f"--etcd-port={free_port()}",
                f"--etcd-peer-port={free_port()}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the API server is ready and the controller manager has aggregated the
        bootstrap `view` ClusterRole (created without rules): the sign that its controllers run."""
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"control plane exited with {self._process.returncode}:\n{self.log_tail()}")
            if (self.state_dir / "token").exists():
                try:
                    self._get("/readyz")
                    if json.loads(self._get("/apis/rbac.authorization.k8s.io/v1/clusterroles/view")).get("rules"):
                        return
                    last_error = "the view ClusterRole is not aggregated yet"
                except (urllib.error.URLError, OSError) as err:
                    last_error = str(err)
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"control plane not ready after {timeout:.0f}s ({last_error}):\n{self.log_tail()}")

    def _get(self, path: str) -> bytes:
        """The body of an admin's GET of ``path``; urllib raises on any status but success."""
        context = ssl.create_default_context(cafile=str(self.state_dir / "ca.crt"))
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.port}{path}",
            headers={"Authorization": f"Bearer {(self.state_dir / 'token').read_text().strip()}"},
        )
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            body: bytes = response.read()
            return body

    def stop(self, timeout: float = 30.0) -> None:
        process, self._process = self._process, None
        terminate(process, timeout)


def build_command(module: str, argv: list[str], build: Callable[[], Path], path: Callable[[], Path]) -> int:
    """``python -m <module> build|path`` of a cached Go binary: build it (once), or say where it is."""
    if argv[:1] == ["build"]:
        print(build())
        return 0
    if argv[:1] == ["path"]:
        print(path())
        return 0
    print(f"usage: python -m {module} build|path", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(build_command("tests.support.controlplane", sys.argv[1:], ensure_built, binary_path))
