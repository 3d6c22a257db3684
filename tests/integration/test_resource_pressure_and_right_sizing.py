"""Resources end to end: two days of cAdvisor, kube-state-metrics and DCGM history of three models
in a real Prometheus, and `modelpilot check` on it: pressure, waste and health told apart, and
KRR's recommendations equal to the rule worked out with numpy from the generated samples."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.support.prometheus import PrometheusServer
from tests.support.resource_scenarios import MIB, ResourceScenario, resource_scenario

HORIZON = timedelta(days=2)
STEP = timedelta(minutes=5)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ResourceScenario, PrometheusServer]]:
    workdir = tmp_path_factory.mktemp("resources")
    scenario = resource_scenario(datetime.now(UTC))
    history = workdir / "resources.om"
    scenario.history.write_openmetrics(history)
    server = PrometheusServer(workdir / "prometheus", backfill=[history]).start()
    try:
        yield scenario, server
    finally:
        server.stop()


def monitor(model: str, url: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelpilot.dev/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": model, "namespace": namespace},
        "spec": {
            "model": {"name": model},
            "deployment": {"name": model},
            "prometheus": {"url": url, "timeout": "20s"},
            "drift": {"enabled": False},
            "labelDrift": {"enabled": False},
            "degradation": {"enabled": False},
            "resources": {
                "enabled": True,
                "horizon": "2d",
                "step": "5m",
                "prices": {"cpuCoreHour": 0.03, "memoryGiBHour": 0.004, "gpuHour": 0.8},
            },
        },
    }


def check(scenario: ResourceScenario, server: PrometheusServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump_all([monitor(m, server.url, scenario.namespace) for m in scenario.cpu]))
    return subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "check", "-f", str(path), "--at", scenario.at.isoformat(), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def expected_cpu_request(scenario: ResourceScenario, model: str) -> str:
    """KRR's CPU request from the raw per-minute usage: rate(x[5m]) at each step of the horizon is
    the mean of the five minutes before it; their 95th percentile over both pods, in millicores."""
    ends = [scenario.history.index(scenario.at - HORIZON + STEP * (j + 1)) for j in range(HORIZON // STEP)]
    rates = [usage[end - 5 : end].mean() for usage in scenario.cpu[model].values() for end in ends]
    return f"{math.ceil(round(float(np.percentile(rates, 95)) * 1000, 6))}m"


def expected_memory(scenario: ResourceScenario, model: str) -> str:
    """KRR's memory: the largest working set of the horizon (each step's max_over_time reaches 5
    minutes back), plus 15%, in MiB."""
    first = scenario.history.index(scenario.at - HORIZON)
    peak = max(float(memory[first:].max()) for memory in scenario.memory[model].values())
    return f"{math.ceil(round(max(peak * 1.15, 100 * MIB) / MIB, 6))}Mi"


def test_pressured_idle_and_healthy_models_get_their_conditions_and_krr_recommendations(
    backfilled: tuple[ResourceScenario, PrometheusServer], tmp_path: Path
) -> None:
    scenario, server = backfilled
    result = check(scenario, server, tmp_path, "-o", "json")
    assert result.returncode == 1, result.stderr  # problems found
    reports = {r["name"]: r["status"] for r in json.loads(result.stdout)}
    conditions = {name: {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} for name, status in reports.items()}
    messages = {name: {c["type"]: c["message"] for c in status["conditions"]} for name, status in reports.items()}
    assert all(c["Ready"] == ("True", "Evaluated") for c in conditions.values()), messages

    assert conditions["pressured"]["ResourcePressure"] == ("True", "OOMKilled")
    for sign in (
        "OOM-killed 4 times",
        "working set 1000Mi is 98% of its 1024Mi limit",
        "throttled in 40%",
        "91C",
        "XID error 79",
    ):
        assert sign in messages["pressured"]["ResourcePressure"], messages["pressured"]["ResourcePressure"]
    assert conditions["idle"]["ResourcePressure"] == ("False", "NoPressure")
    assert conditions["idle"]["Overprovisioned"] == ("True", "RequestsAboveUse")
    assert "GPU of server busy 3%" in messages["idle"]["Overprovisioned"]
    assert conditions["healthy"]["ResourcePressure"] == ("False", "NoPressure")
    assert conditions["healthy"]["Overprovisioned"] == ("False", "RightSized")

    for model, status in reports.items():
        [container] = status["resources"]["containers"]  # the pause container and pod-level series left out
        assert container["name"] == "server" and container["pods"] == 2  # the decoy Deployment's pod left out
        got = {(r["resource"], r["kind"]): r for r in container["recommendations"]}
        assert got["cpu", "request"]["recommended"] == expected_cpu_request(scenario, model), model
        assert got["memory", "request"]["recommended"] == got["memory", "limit"]["recommended"]
        assert got["memory", "limit"]["recommended"] == expected_memory(scenario, model), model
        assert got["cpu", "request"]["inputs"]["samples"] == 2 * (HORIZON // STEP)
        assert got["cpu", "limit"].get("recommended") is None  # KRR sets no CPU limit
        patch = json.loads(status["resources"]["patch"])
        [entry] = patch["spec"]["template"]["spec"]["containers"]
        assert entry["resources"]["requests"]["cpu"] == got["cpu", "request"]["recommended"]
        assert status["resources"]["command"].startswith(f"kubectl patch deployment {model} -n {scenario.namespace} ")
    gpu = reports["pressured"]["resources"]["containers"][0]["gpu"]
    assert gpu["devices"] == 2 and gpu["xidError"] == 79
    assert gpu["utilization"]["average"] == pytest.approx(0.85)
    assert "held" in gpu["advice"] and "not memory needed" in gpu["advice"]
    idle_cost = reports["idle"]["resources"]["cost"]
    assert idle_cost["monthlySaving"] > 0 and idle_cost["recommendedHourly"] < idle_cost["currentHourly"]
    # A CPU limit is removed (null in a strategic merge patch) only where one is set.
    pressured_patch = json.loads(reports["pressured"]["resources"]["patch"])["spec"]["template"]["spec"]["containers"][0]
    assert pressured_patch["resources"]["limits"]["cpu"] is None
    idle_patch = json.loads(reports["idle"]["resources"]["patch"])["spec"]["template"]["spec"]["containers"][0]
    assert "cpu" not in idle_patch["resources"]["limits"]

    text = check(scenario, server, tmp_path).stdout
    assert "Resources (horizon 2d" in text and "krr: CPU usage percentile" in text and "kubectl patch deployment idle" in text


def test_a_prometheus_that_fails_gives_unknown_not_a_verdict(
    backfilled: tuple[ResourceScenario, PrometheusServer], tmp_path: Path
) -> None:
    scenario, server = backfilled
    manifest = monitor("pressured", server.url, scenario.namespace)
    # Valid PromQL that Prometheus refuses when it runs: many series on the one side of `on ()`.
    series = "container_memory_working_set_bytes{$selector}"
    failing = f"sum by (pod, container) ({series}) * on () group_left () {series}"
    manifest["spec"]["metrics"] = {"overrides": {"memoryWorkingSet": failing}}
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "check", "-f", str(path), "--at", scenario.at.isoformat(), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    got = {c["type"]: (c["status"], c["reason"]) for c in json.loads(result.stdout)["status"]["conditions"]}
    assert got["ResourcePressure"] == ("Unknown", "QueryFailed")
    assert got["Overprovisioned"] == ("Unknown", "QueryFailed")
    assert got["Ready"][0] == "Unknown"
