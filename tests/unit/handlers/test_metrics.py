"""The operator's /metrics collectors: what a resource's latest status becomes as gauges."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest

from modelpilot.api import Condition
from modelpilot.api.monitor import ClassQuality, FeatureResult, ModelMonitorStatus, PerformanceStatus, QualityStatus
from modelpilot.handlers.metrics import MonitorResults, ResourceStates

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def exposition(collector: MonitorResults | ResourceStates) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_each_condition_is_one_for_its_status_and_zero_for_the_others() -> None:
    states = ResourceStates()
    states.update(
        "ModelMonitor", "ml", "fraud", [Condition(type="Ready", status="Unknown", reason="Pending", last_transition_time=NOW)]
    )
    text = exposition(states)
    labels = 'kind="ModelMonitor",name="fraud",namespace="ml"'
    assert f'modelpilot_resource_condition{{condition="Ready",{labels},status="Unknown"}} 1.0' in text
    assert f'modelpilot_resource_condition{{condition="Ready",{labels},status="True"}} 0.0' in text
    states.ticked("ModelMonitor", "ml", "fraud", [])
    states.ticked("ModelMonitor", "ml", "fraud", [])
    assert f"modelpilot_resource_ticks_total{{{labels}}} 2.0" in exposition(states)
    states.forget("ModelMonitor", "ml", "fraud")
    assert 'name="fraud"' not in exposition(states)


def test_monitor_gauges_carry_model_and_feature_and_skip_what_is_unknown() -> None:
    results = MonitorResults()
    status = ModelMonitorStatus(
        last_evaluation=NOW,
        performance=PerformanceStatus(latency_p99=0.25, throughput=12.5),
        quality=QualityStatus(
            samples=900,
            accuracy=0.93,
            classes=[ClassQuality(name="fraud", precision=0.5, recall=0.25, f1=0.33, support=40, predicted_share=0.04)],
        ),
        features=[
            FeatureResult(name="amount", kind="numerical", verdict="Drift", psi=0.31, corrected_pvalue=0.001),
            FeatureResult(name="age", kind="numerical", verdict="InsufficientData"),
        ],
    )
    results.update("ml", "fraud", "fraud-detector", status)
    text = exposition(results)
    model = 'model="fraud-detector",monitor="fraud",namespace="ml"'
    assert f"modelpilot_model_accuracy{{{model}}} 0.93" in text
    assert f"modelpilot_model_latency_p99_seconds{{{model}}} 0.25" in text
    assert f"modelpilot_monitor_last_evaluation_timestamp_seconds{{{model}}} 1.7723232e+09" in text  # 2026-03-01
    assert f'modelpilot_feature_psi{{feature="amount",{model}}} 0.31' in text
    assert f'modelpilot_feature_drifted{{feature="amount",{model}}} 1.0' in text
    assert f"modelpilot_model_quality_samples{{{model}}} 900.0" in text
    assert f'modelpilot_class_prediction_share{{class="fraud",{model}}} 0.04' in text
    assert f'modelpilot_class_recall{{class="fraud",{model}}} 0.25' in text
    # No value, no sample: an unknown figure is absent rather than zero.
    assert "modelpilot_model_error_rate{" not in text
    assert 'feature="age"' not in text
