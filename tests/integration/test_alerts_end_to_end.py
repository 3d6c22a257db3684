"""Alerts that reach people: a real Prometheus loads the rules `modelpilot alerts` prints, scrapes
a real model server and the real operator, and sends to a real Alertmanager, which routes to a
local receiver. The test sees a serving alert (errors, from the model's own metrics) and a
quality alert (accuracy, from the operator's gauges) arrive with their labels, and resolve once
the model is healthy again."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.alert_receiver import AlertReceiver
from tests.support.alertmanager import AlertmanagerServer
from tests.support.kube import OperatorProcess, wait_for
from tests.support.ports import free_port
from tests.support.process import terminate
from tests.support.prometheus import PrometheusServer
from tests.support.serving import start_server

MONITOR = "fraud-detector"


class Load:
    """Predictions against the model server, 20 a second, until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        row = {"amount": 42.0, "distance_km": 3.0, "hour": 14, "merchant": "grocery"}
        i = 0
        while not self._stop.wait(0.05):
            i += 1
            body = json.dumps({"instances": [{**row, "amount": 10.0 + i % 200}]}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/v1/models/{MONITOR}:predict", data=body, method="POST"
            )
            try:
                urllib.request.urlopen(request, timeout=2).close()
            except (urllib.error.URLError, OSError):
                pass  # a simulated failure (HTTP 500) or the server restarting


def monitor(prometheus_url: str) -> dict[str, Any]:
    short = {"for": "2s"}
    return {
        "apiVersion": "modelpilot.dev/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": MONITOR},
        "spec": {
            "model": {"name": MONITOR, "version": {"fixed": "1"}},
            "prometheus": {"url": prometheus_url, "timeout": "5s"},
            "interval": "5s",
            "performance": {"window": "15s", "errorRate": 0.05},
            "quality": {"window": "20s", "minSamples": 20, "accuracy": 0.9},
            "drift": {"enabled": False},
            "labelDrift": {"enabled": False},
            "degradation": {"enabled": False},
            # Seconds instead of minutes, so the test sees firing and resolved soon.
            "alerting": {"minRequests": 20, "alerts": {"ModelErrorRateHigh": short, "ModelAccuracyLow": short}},
        },
    }


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    with AlertReceiver() as running:
        yield running


def test_alerts_reach_a_receiver_through_alertmanager_and_resolve(
    operator: OperatorProcess, namespace: str, receiver: AlertReceiver, tmp_path: Path
) -> None:
    cluster = operator.cluster
    model_port = free_port()
    model = start_server(
        {"ERROR_RATE": "0.3", "ACCURACY": "0.5", "FEEDBACK_FRACTION": "1.0", "LATENCY_MS": "1"},
        model_port,
        tmp_path / "model.log",
    )
    with AlertmanagerServer(tmp_path / "alertmanager", receiver.url) as alertmanager:
        rules = tmp_path / "rules.yaml"
        targets = {"model": [f"127.0.0.1:{model_port}"], "modelpilot": [operator.metrics_url.split("/")[2]]}
        prometheus = PrometheusServer(
            tmp_path / "prometheus",
            scrape_targets=targets,
            rule_files=[rules],  # a glob: none until written
            alertmanagers=[alertmanager.address],
            lookback_delta="30s",
        )
        with prometheus:
            manifest = monitor(prometheus.url)
            manifest["metadata"]["namespace"] = namespace
            (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(manifest))
            printed = subprocess.run(
                [sys.executable, "-m", "modelpilot.cli", "alerts", "-f", str(tmp_path / "monitor.yaml"), "--version", "1"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            rules.write_text(printed.stdout)
            prometheus.set_scrape_targets(targets)  # a reload: Prometheus reads the rules now
            cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
            try:
                with Load(model_port):
                    errors = wait_for(lambda: receiver.first("ModelErrorRateHigh"), timeout=120, what="errors firing")
                    accuracy = wait_for(lambda: receiver.first("ModelAccuracyLow"), timeout=120, what="accuracy firing")
                    for alert in (errors, accuracy):
                        labels = alert.labels
                        assert (labels["model"], labels["version"], labels["namespace"], labels["monitor"]) == (
                            MONITOR,
                            "1",
                            namespace,
                            MONITOR,
                        )
                        assert alert.annotations["runbook_url"].endswith(f"#{alert.name.lower()}")
                    assert errors.severity == accuracy.severity == "critical"

                    # The monitor reads back what fires, for `kubectl describe`.
                    def firing() -> set[str]:
                        status = cluster.get("modelmonitors.modelpilot.dev", MONITOR, namespace).get("status", {})
                        return {a["name"] for a in status.get("firingAlerts", [])}

                    wait_for(lambda: {"ModelErrorRateHigh", "ModelAccuracyLow"} <= firing(), timeout=60, what="firingAlerts")
                    described = cluster.kubectl("describe", "modelmonitor", MONITOR, "-n", namespace).stdout
                    assert "Firing Alerts:" in described and "ModelErrorRateHigh" in described

                    # The fixed model: no failures, every prediction right. Both alerts resolve.
                    terminate(model, 10)
                    model = start_server(
                        {"ERROR_RATE": "0", "ACCURACY": "1.0", "FEEDBACK_FRACTION": "1.0", "LATENCY_MS": "1"},
                        model_port,
                        tmp_path / "model.log",
                    )
                    wait_for(lambda: receiver.first("ModelErrorRateHigh", "resolved"), timeout=120, what="errors resolved")
                    wait_for(lambda: receiver.first("ModelAccuracyLow", "resolved"), timeout=120, what="accuracy resolved")
                    wait_for(lambda: not firing(), timeout=60, what="no firing alerts in status")
            finally:
                terminate(model, 10)
