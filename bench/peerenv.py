"""The peers' virtualenv: Evidently and Alibi Detect installed with pip next to, never into,
the operator's environment. Created on first use under the modelpilot cache, keyed by a hash
of bench/peers-requirements.txt, and reused while that file is unchanged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["REQUIREMENTS", "PeerEnv", "peer_env"]

REQUIREMENTS = Path(__file__).resolve().parent / "peers-requirements.txt"
# The peers' own telemetry must not try to reach the network from a benchmark.
QUIET_ENV = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1", "TQDM_DISABLE": "1"}


class PeerEnv:
    def __init__(self, root: Path, install_seconds: float, versions: dict[str, str]):
        self.root = root
        self.install_seconds = install_seconds
        self.versions = versions

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            # -I: the script's folder (bench/) stays off sys.path, so no bench module can shadow one
            # of the peers' imports, and PYTHON* variables of the operator's environment are ignored.
            [str(self.python), "-I", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **QUIET_ENV},
        )


def _cache_root() -> Path:
    return Path(os.environ.get("MODELPILOT_CACHE") or Path.home() / ".cache" / "modelpilot")


def peer_env(log=print) -> PeerEnv:
    """The peers' virtualenv, created (pip install) when missing; raises RuntimeError if pip fails."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    root = _cache_root() / f"bench-peers-{digest}"
    marker = root / ".installed"
    began = time.monotonic()
    if not marker.exists():
        log(f"installing the peers into their own virtualenv (bench-peers-{digest} in the modelpilot cache)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
        pip = subprocess.run(
            [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"pip could not install the peers:\n{(pip.stdout + pip.stderr)[-3000:]}")
        marker.write_text(REQUIREMENTS.read_text())
    installed = time.monotonic() - began
    listing = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout
    versions = dict(line.split("==", 1) for line in listing.splitlines() if "==" in line)
    wanted = ("evidently", "alibi-detect", "alibi_detect", "numpy", "scipy", "pandas")
    return PeerEnv(root, installed, {k: v for k, v in versions.items() if k.lower() in wanted})
