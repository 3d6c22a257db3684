"""The alert rules generated from ModelMonitors, checked and run by Prometheus's own promtool.

Each alert gets a `promtool test rules` case written from the series it watches: silent before
its `for:` has passed, firing with the expected labels after, resolved after recovery, and
silent on low traffic where it judges quality or drift. The times are worked out by hand below,
not taken from the rules.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelpilot.api.monitor import ALERT_NAMES, ModelMonitorSpec
from modelpilot.reconcile.monitor.alerts import ALERTS, PROBLEMS
from modelpilot.reconcile.monitor.rules import OPERATOR_RULES, RuleDefaults, alert_rules, prometheus_rule, rule_groups

DEFAULTS = RuleDefaults(rule_labels={"release": "kube-prometheus-stack"})
NAMESPACE = "ml"
PROMTOOL = shutil.which("promtool")


def spec(model: str, **fields: Any) -> ModelMonitorSpec:
    return ModelMonitorSpec.model_validate({"model": {"name": model}, "prometheus": {"url": "http://prometheus:9090"}, **fields})


MONITORS = {
    "fraud": spec("fraud-detector", quality={"accuracy": 0.92}),
    "quiet": spec("quiet-model"),
    "idle": spec("idle-model", dataQuality={"enabled": False}),
    "sized": spec("sized-model", deployment={"name": "sized-model"}, resources={"enabled": True}),
}


def groups() -> list[dict[str, Any]]:
    return [
        group
        for name, monitor in MONITORS.items()
        for group in rule_groups(monitor, namespace=NAMESPACE, monitor=name, version="3", defaults=DEFAULTS)
    ]


def rule(monitor: str, alert: str) -> dict[str, Any]:
    for group in groups():
        for candidate in group["rules"]:
            if candidate["alert"] == alert and candidate["labels"]["monitor"] == monitor:
                return candidate
    raise AssertionError(f"no {alert} for {monitor}")


def firing(monitor: str, alert: str, /, **series_labels: str) -> dict[str, Any]:
    """The alert as promtool reports it: the series' labels, then the rule's, and its annotations."""
    generated = rule(monitor, alert)
    annotations = {
        key: value.replace("{{ $labels.feature }}", series_labels.get("feature", ""))
        for key, value in generated["annotations"].items()
    }
    return {"exp_labels": {**series_labels, **generated["labels"]}, "exp_annotations": annotations}


def gauge(name: str, monitor: str, model: str, values: str, **labels: str) -> dict[str, str]:
    selector = ",".join(f'{k}="{v}"' for k, v in {"namespace": NAMESPACE, "monitor": monitor, "model": model, **labels}.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


def condition(monitor: str, type_: str, status: str, values: str) -> dict[str, str]:
    labels = f'kind="ModelMonitor",namespace="{NAMESPACE}",name="{monitor}",condition="{type_}",status="{status}"'
    return {"series": f"modelpilot_resource_condition{{{labels}}}", "values": values}


def buckets(model: str, fast: str, slow: str) -> list[dict[str, str]]:
    """Latency buckets: ``fast`` requests at most 50 ms, ``slow`` the rest, all under 250 ms."""
    metric = "model_request_duration_seconds_bucket"
    return [
        {"series": f'{metric}{{model="{model}",version="3",le="0.05"}}', "values": fast},
        {"series": f'{metric}{{model="{model}",version="3",le="0.1"}}', "values": fast},
        {"series": f'{metric}{{model="{model}",version="3",le="0.25"}}', "values": slow},
        {"series": f'{metric}{{model="{model}",version="3",le="+Inf"}}', "values": slow},
    ]


def requests(model: str, status: str, values: str) -> dict[str, str]:
    return {"series": f'model_requests_total{{model="{model}",version="3",status="{status}"}}', "values": values}


def case(series: list[dict[str, str]], checks: list[tuple[str, str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": alerts} for at, alert, alerts in checks],
    }


def cases() -> list[dict[str, Any]]:
    fraud = {"namespace": NAMESPACE, "monitor": "fraud", "model": "fraud-detector"}
    quiet = {"namespace": NAMESPACE, "monitor": "quiet", "model": "quiet-model"}
    return [
        # Accuracy 0.90 against the spec's 0.92 from minute 10 to 30: pending at 10, firing from 15, resolved at 31.
        # The quiet model is far worse, but on 50 labels (fewer than quality.minSamples): silent.
        case(
            [
                gauge("modelpilot_model_accuracy", "fraud", "fraud-detector", "0.97x9 0.90x20 0.97x20"),
                gauge("modelpilot_model_quality_samples", "fraud", "fraud-detector", "500x50"),
                gauge("modelpilot_model_accuracy", "quiet", "quiet-model", "0.5x50"),
                gauge("modelpilot_model_quality_samples", "quiet", "quiet-model", "50x50"),
            ],
            [
                ("14m", "ModelAccuracyLow", []),
                ("16m", "ModelAccuracyLow", [firing("fraud", "ModelAccuracyLow", **fraud)]),
                ("30m", "ModelAccuracyLow", [firing("fraud", "ModelAccuracyLow", **fraud)]),
                ("32m", "ModelAccuracyLow", []),
            ],
        ),
        # 100 requests a minute, all under 50 ms until minute 10, then all between 100 and 250 ms
        # (p99 above 0.1 s from minute 11), and 5 failures a minute from minute 11 (about 4.8%).
        # The quiet model is as slow and failing, on 1 request a minute: silent.
        case(
            [
                *buckets("fraud-detector", "0+100x10 1000x30", "0+100x40"),
                requests("fraud-detector", "success", "0+100x40"),
                requests("fraud-detector", "error", "0x10 5+5x29"),
                *buckets("quiet-model", "0x40", "0+1x40"),
                requests("quiet-model", "success", "0+1x40"),
                requests("quiet-model", "error", "0+1x40"),
            ],
            [
                ("15m", "ModelLatencyHigh", []),
                ("15m", "ModelErrorRateHigh", []),
                ("17m", "ModelLatencyHigh", [firing("fraud", "ModelLatencyHigh")]),
                ("17m", "ModelErrorRateHigh", [firing("fraud", "ModelErrorRateHigh")]),
            ],
        ),
        # No request changes the idle model's counter until minute 20: absent traffic fires after its
        # 10m and resolves once requests flow. The other two models have no series at all: absent too.
        case(
            [requests("idle-model", "success", "100x20 100+50x20")],
            [
                ("9m", "ModelTrafficAbsent", []),
                ("11m", "ModelTrafficAbsent", [firing(m, "ModelTrafficAbsent") for m in ("fraud", "idle", "quiet", "sized")]),
                ("23m", "ModelTrafficAbsent", [firing(m, "ModelTrafficAbsent") for m in ("fraud", "quiet", "sized")]),
            ],
        ),
        # PSI 0.3 from minute 10 fires after 1m; the rare feature's PSI 0.9 rests on 20 observations: silent.
        case(
            [
                gauge("modelpilot_feature_psi", "fraud", "fraud-detector", "0.1x9 0.3x20", feature="amount"),
                gauge("modelpilot_feature_samples", "fraud", "fraud-detector", "800x30", feature="amount"),
                gauge("modelpilot_feature_psi", "quiet", "quiet-model", "0.9x30", feature="rare"),
                gauge("modelpilot_feature_samples", "quiet", "quiet-model", "20x30", feature="rare"),
            ],
            [
                ("10m", "ModelFeatureDrift", []),
                ("12m", "ModelFeatureDrift", [firing("fraud", "ModelFeatureDrift", **fraud, feature="amount")]),
            ],
        ),
        # Conditions from the operator's gauges: True (or Healthy False) from minute 10, `for: 5m`.
        *(
            case(
                [condition("fraud", type_, status, "0x9 1x20")],
                [
                    ("14m", alert, []),
                    (
                        "16m",
                        alert,
                        [
                            firing(
                                "fraud",
                                alert,
                                kind="ModelMonitor",
                                namespace=NAMESPACE,
                                name="fraud",
                                condition=type_,
                                status=status,
                            )
                        ],
                    ),
                ],
            )
            for alert, type_, status in (
                ("ModelUnhealthy", "Healthy", "False"),
                ("ModelLabelDrift", "LabelDrift", "True"),
                ("ModelConceptDrift", "ConceptDrift", "True"),
                ("ModelDataQuality", "DataQuality", "True"),
            )
        ),
        # Resource conditions, only of the monitor that watches resources: True from minute 10;
        # pressure fires after its 10m, overprovisioning after its 1h. The same condition of a
        # monitor without spec.resources (which never has it) has no rule: silent.
        case(
            [
                condition("sized", "ResourcePressure", "True", "0x9 1x80"),
                condition("sized", "Overprovisioned", "True", "0x9 1x80"),
                condition("fraud", "ResourcePressure", "True", "1x90"),
            ],
            [
                ("19m", "ModelResourcePressure", []),
                (
                    "21m",
                    "ModelResourcePressure",
                    [
                        firing(
                            "sized",
                            "ModelResourcePressure",
                            kind="ModelMonitor",
                            namespace=NAMESPACE,
                            name="sized",
                            condition="ResourcePressure",
                            status="True",
                        )
                    ],
                ),
                ("69m", "ModelOverprovisioned", []),
                (
                    "71m",
                    "ModelOverprovisioned",
                    [
                        firing(
                            "sized",
                            "ModelOverprovisioned",
                            kind="ModelMonitor",
                            namespace=NAMESPACE,
                            name="sized",
                            condition="Overprovisioned",
                            status="True",
                        )
                    ],
                ),
            ],
        ),
        # Evaluated every minute until minute 10, then never again: with a 5m interval, stale
        # after 15 minutes (true from minute 26), firing 5 minutes later.
        case(
            [gauge("modelpilot_monitor_last_evaluation_timestamp_seconds", "quiet", "quiet-model", "0+60x10")],
            [
                ("30m", "ModelMonitorStale", []),
                ("32m", "ModelMonitorStale", [firing("quiet", "ModelMonitorStale", **quiet)]),
            ],
        ),
        # Three failed evaluations in a row from minute 10: firing after its 15m.
        case(
            [gauge("modelpilot_monitor_consecutive_failures", "quiet", "quiet-model", "0x9 3x30")],
            [
                ("24m", "ModelMonitorFailing", []),
                ("26m", "ModelMonitorFailing", [firing("quiet", "ModelMonitorFailing", **quiet)]),
            ],
        ),
    ]


@pytest.fixture(scope="module")
def rule_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [*groups(), *OPERATOR_RULES]}, sort_keys=False))
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool (Debian's prometheus package) is needed: make deps"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def test_every_generated_rule_passes_promtool_check(rule_file: Path, tmp_path: Path) -> None:
    every_preset = [
        group
        for preset in ("generic", "tfserving", "triton", "kserve")
        for group in rule_groups(
            spec("m", metrics={"preset": preset}), namespace="ns", monitor=f"m-{preset}", version=None, defaults=DEFAULTS
        )
    ]
    (tmp_path / "presets.yaml").write_text(yaml.safe_dump({"groups": every_preset}))
    result = promtool("check", "rules", str(rule_file), str(tmp_path / "presets.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_time_with_its_labels_resolves_and_stays_silent_on_low_traffic(
    rule_file: Path, tmp_path: Path
) -> None:
    tested = {check["alertname"] for c in cases() for check in c["alert_rule_test"]}
    assert tested == set(ALERT_NAMES), "every alert has a case"
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(rule_file)], "evaluation_interval": "1m", "tests": cases()}))
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_so_the_cases_above_can_fail(rule_file: Path, tmp_path: Path) -> None:
    fraud = {"namespace": NAMESPACE, "monitor": "fraud", "model": "fraud-detector"}
    early = case(
        [
            gauge("modelpilot_model_accuracy", "fraud", "fraud-detector", "0.90x30"),
            gauge("modelpilot_model_quality_samples", "fraud", "fraud-detector", "500x30"),
        ],
        [("3m", "ModelAccuracyLow", [firing("fraud", "ModelAccuracyLow", **fraud)])],  # before its 5m
    )
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(rule_file)], "evaluation_interval": "1m", "tests": [early]}))
    assert promtool("test", "rules", str(tests)).returncode != 0


def test_spec_thresholds_and_overrides_come_before_the_guide_defaults() -> None:
    monitor = spec(
        "m",
        performance={"latencyP99": 0.3},
        alerting={"alerts": {"ModelAccuracyLow": {"threshold": 0.8, "for": "10m", "severity": "warning"}}},
        quality={"accuracy": 0.9},
    )
    rules = {r.name: r for r in alert_rules(monitor, namespace="ns", monitor="m", version=None)}
    assert rules["ModelAccuracyLow"].threshold == 0.8  # the override, over the spec's 0.9
    assert (rules["ModelAccuracyLow"].hold, rules["ModelAccuracyLow"].severity) == ("10m", "warning")
    assert rules["ModelLatencyHigh"].threshold == 0.3  # the spec's, over the guide's 0.1
    assert rules["ModelErrorRateHigh"].threshold == ALERTS["ModelErrorRateHigh"].threshold == 0.01
    assert "> 0.3" in rules["ModelLatencyHigh"].expr


def test_a_disabled_alert_and_a_preset_without_error_counts_are_left_out() -> None:
    monitor = spec("m", metrics={"preset": "kserve"}, alerting={"alerts": {"ModelTrafficAbsent": {"enabled": False}}})
    names = {r.name for r in alert_rules(monitor, namespace="ns", monitor="m", version=None)}
    # No resource alerts either: the spec does not watch resources.
    resource_alerts = {"ModelResourcePressure", "ModelOverprovisioned"}
    assert names == set(ALERT_NAMES) - {"ModelTrafficAbsent", "ModelErrorRateHigh"} - resource_alerts
    # A monitor that does not check data quality never has the condition, so no rule for it.
    unchecked = {r.name for r in alert_rules(MONITORS["idle"], namespace="ns", monitor="idle", version=None)}
    assert "ModelDataQuality" not in unchecked and "ModelDataQuality" in names


def test_the_operator_labels_win_and_a_crafted_value_cannot_break_out_of_the_selector() -> None:
    monitor = spec('evil"} or vector(1) #', alerting={"ruleLabels": {"release": "mine", "team": "a"}})
    body = prometheus_rule(monitor, namespace="ns", monitor="m", version='1"}', defaults=DEFAULTS)
    assert body["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # the operator's label, not the spec's
    assert body["metadata"]["labels"]["team"] == "a"
    serving = 0
    for generated in body["spec"]["groups"][0]["rules"]:
        assert generated["labels"]["namespace"] == "ns" and generated["labels"]["monitor"] == "m"
        if "model_requests_total" in generated["expr"]:
            serving += 1
            assert 'model="evil\\"} or vector(1) #",version="1\\"}"' in generated["expr"], generated["expr"]
    assert serving == 3  # latency, errors and traffic; no other alert reads the model's metrics


def test_the_alert_table_gives_every_problem_condition_one_severity() -> None:
    assert set(ALERTS) == set(ALERT_NAMES)
    assert PROBLEMS == {
        "Healthy": ("False", "critical"),
        "PerformanceDegraded": ("True", "critical"),
        "ErrorRateHigh": ("True", "critical"),
        "LatencyHigh": ("True", "warning"),
        "DataDrift": ("True", "warning"),
        "LabelDrift": ("True", "warning"),
        "ConceptDrift": ("True", "warning"),
        "ResourcePressure": ("True", "warning"),
        "Overprovisioned": ("True", "info"),
        "DataQuality": ("True", "warning"),
    }
