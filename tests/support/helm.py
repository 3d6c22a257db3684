"""Helm v4 for the chart's tests, built from the Go module in tests/helm (release pinned in its
go.mod) and cached outside the repository beside the control plane, keyed by a hash of that
module, so only the first run on a machine pays for the build. Run
``python -m tests.support.helm build`` to build it ahead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.controlplane import build_command, cache_root

__all__ = ["Helm", "binary_path", "ensure_built", "release"]

MODULE_DIR = Path(__file__).resolve().parent.parent / "helm"
MODULE = "helm.sh/helm/v4"


def release() -> str:
    """The Helm release go.mod pins, e.g. ``v4.3.2``."""
    for line in (MODULE_DIR / "go.mod").read_text().splitlines():
        words = line.split()
        if words[:1] == ["require"]:
            words = words[1:]
        if words[:1] == [MODULE]:
            return words[1]
    raise RuntimeError(f"{MODULE_DIR / 'go.mod'} does not require {MODULE}")


def _module_key() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((MODULE_DIR / name).read_bytes())
    return f"{release()}-{digest.hexdigest()[:12]}"


def binary_path() -> Path:
    return cache_root() / f"helm-{_module_key()}" / "helm"


def ensure_built(*, quiet: bool = False) -> Path:
    """Build helm unless the cache has it; returns its path."""
    binary = binary_path()
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise RuntimeError("building helm for the chart tests needs Go (1.26 or newer) on PATH")
    binary.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"building helm ({_module_key()}) into {binary.parent}", file=sys.stderr, flush=True)
    started = time.monotonic()
    # Unique per builder: two test processes building at once each finish a whole binary, and
    # the rename makes whichever lands last the one in place.
    partial = binary.with_name(f"helm.{os.getpid()}.partial")
    # Helm reports the version the linker writes in; without it `helm version` says only "v4.3".
    version = f"-X {MODULE}/internal/version.version={release()}"
    subprocess.run(
        ["go", "build", "-trimpath", f"-ldflags=-s -w {version}", "-o", str(partial), "."],
        cwd=MODULE_DIR,
        check=True,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
    )
    partial.rename(binary)
    if not quiet:
        print(f"built in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return binary


@dataclass
class Helm:
    """helm run against the cluster of ``kubeconfig``, with its own cache, config and data
    directories under ``home`` (never the user's ~/.cache/helm or ~/.config/helm)."""

    home: Path
    kubeconfig: Path | None = None
    binary: Path = field(default_factory=ensure_built)

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        result = subprocess.run([str(self.binary), *args], input=input, capture_output=True, text=True, env=env, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
        return result


if __name__ == "__main__":
    sys.exit(build_command("tests.support.helm", sys.argv[1:], ensure_built, binary_path))
