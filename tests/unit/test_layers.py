"""The layer rule of the design (handlers -> sources -> reconcile -> analysis -> api) holds, and the
pure layers load no I/O client."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


IO_CLIENTS = ("kubernetes", "kopf", "mlflow", "requests", "urllib3", "prometheus_api_client")


def test_importing_the_decisions_loads_no_io_client() -> None:
    # A fresh interpreter: this test process has loaded every client already.
    probe = (
        "import sys, modelpilot.reconcile.monitor, modelpilot.reconcile.retrain, modelpilot.reconcile.canary\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({IO_CLIENTS!r})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
    # The probe can see a loaded client: the sources layer loads them all.
    control = probe.replace("modelpilot.reconcile.canary\n", "modelpilot.reconcile.canary, modelpilot.sources.canary\n")
    loaded = subprocess.run([sys.executable, "-c", control], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "kubernetes" in loaded.stdout and "mlflow" in loaded.stdout
