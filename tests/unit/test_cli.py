import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("command", [["retrain", "history", "x"], ["canary", "abort", "x"]])
def test_commands_that_need_a_cluster_say_so_without_a_traceback(command: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    result = subprocess.run([sys.executable, "-m", "modelpilot.cli", *command], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no Kubernetes configuration: set KUBECONFIG" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_refuses_an_invalid_monitor_naming_the_field(tmp_path: Path) -> None:
    manifest = tmp_path / "monitor.yaml"
    manifest.write_text(
        "kind: ModelMonitor\nmetadata: {name: m}\nspec: {model: {name: m}, prometheus: {url: 'http://p:9090'}, interval: soon}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "check", "-f", str(manifest)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "spec.interval" in result.stderr and "duration" in result.stderr


def test_verbose_logging_leaves_the_http_clients_quiet() -> None:
    import logging

    import kopf

    from modelpilot.cli import configure_logging

    configure_logging(verbose=True)
    kopf.configure(verbose=True)  # as `modelpilot run -v` does next
    assert logging.getLogger("modelpilot.handlers").isEnabledFor(logging.DEBUG)
    # The Kubernetes client logs response bodies (Secrets among them) at debug level.
    assert not logging.getLogger("kubernetes.client.rest").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG)


def test_a_registered_model_name_that_mlflow_cannot_quote_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "monitor.yaml"
    manifest.write_text(
        'kind: ModelMonitor\nmetadata: {name: m}\nspec:\n  model: {name: m, version: {mlflow: {registeredModel: "it\'s"}}}\n'
        "  prometheus: {url: 'http://p:9090'}\n  mlflow: {trackingUri: 'http://mlflow:5000'}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "check", "-f", str(manifest)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "spec.model.version.mlflow.registeredModel" in result.stderr


def test_profile_of_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "train.csv"
    result = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "profile", "--data", str(missing)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"modelpilot profile: {missing}: No such file or directory"
