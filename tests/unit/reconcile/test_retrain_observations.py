"""What a RetrainPolicy reads of a Job and of its monitor, as pure functions of their status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelpilot.api import RETRAIN_POLICY, load_spec
from modelpilot.api.monitor import FeatureResult, LabelDriftStatus, ModelMonitorStatus, QualityStatus
from modelpilot.reconcile.retrain import JobCondition, champion_alias, job_view, monitor_view


@pytest.mark.parametrize(
    ("conditions", "succeeded", "state"),
    [
        (None, 0, "Missing"),
        ([], 0, "Active"),
        ([JobCondition("Complete", "True")], 1, "Succeeded"),
        ([JobCondition("SuccessCriteriaMet", "True")], 0, "Succeeded"),
        ([JobCondition("FailureTarget", "True", "BackoffLimitExceeded", "too many")], 0, "Failed"),
        ([JobCondition("Failed", "False")], 0, "Active"),
        ([], 1, "Succeeded"),
    ],
)
def test_job_state_follows_its_true_conditions(conditions: list[JobCondition] | None, succeeded: int, state: str) -> None:
    assert job_view("p-1-1", conditions, succeeded).state == state


def test_a_failed_job_says_why() -> None:
    view = job_view("p-1-1", [JobCondition("Failed", "True", "DeadlineExceeded", "ran past 1h")], 0)
    assert view.message == "DeadlineExceeded: ran past 1h"


def test_monitor_view_reads_the_typed_status() -> None:
    evaluated = datetime(2026, 3, 1, tzinfo=UTC)
    status = ModelMonitorStatus(
        last_evaluation=evaluated,
        quality=QualityStatus(samples=500, accuracy=0.81, precision_macro=0.7, recall_macro=0.6, f1_macro=0.65),
        features=[
            FeatureResult(name="amount", kind="numerical", verdict="Drift", psi=0.4),
            FeatureResult(name="age", kind="numerical", verdict="InsufficientData"),
        ],
        label_drift=LabelDriftStatus(verdict="Drift"),
    )
    view = monitor_view(status)
    assert view.last_evaluation == evaluated
    assert view.quality == {"accuracy": 0.81, "precision": 0.7, "recall": 0.6, "f1": 0.65}
    assert view.feature_psi == {"amount": 0.4}
    assert view.label_drift is True
    empty = monitor_view(ModelMonitorStatus())
    assert empty.quality["accuracy"] is None and empty.label_drift is None and empty.feature_psi == {}


def test_the_gate_compares_with_the_alias_the_canary_moves() -> None:
    base = {
        "model": "fraud",
        "mlflow": {"trackingUri": "http://mlflow:5000"},
        "triggers": {"manual": {}},
        "training": {"template": {"spec": {"containers": [{"name": "t", "image": "t:1"}]}}},
    }
    assert champion_alias(load_spec(RETRAIN_POLICY, base)) == "champion"
    moved = {**base, "deployment": {"canaryTemplate": {"alias": "production"}}}
    assert champion_alias(load_spec(RETRAIN_POLICY, moved)) == "production"
