"""The RetrainPolicy resource: when to retrain a model, how, and what happens to the result."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from .common import ApiModel, Condition, Duration, LocalObjectReference, MlflowSettings

__all__ = [
    "DeploymentSpec",
    "DriftTrigger",
    "GateSpec",
    "HyperparameterSearch",
    "ManualTrigger",
    "MetricComparison",
    "PerformanceTrigger",
    "RetrainPolicySpec",
    "RetrainPolicyStatus",
    "RetrainRecord",
    "RunStatus",
    "TriggerState",
    "ScheduleTrigger",
    "TrainingSpec",
    "TriggerRecord",
    "TriggersSpec",
]

QualityMetric = Literal["accuracy", "precision", "recall", "f1"]
TriggerType = Literal["performance", "drift", "schedule", "manual"]


class PerformanceTrigger(ApiModel):
    metric: QualityMetric = "accuracy"
    threshold: float = Field(ge=0, le=1, description="Retrain when the monitor's metric stays below this.")
    sustained_evaluations: int = Field(default=1, ge=1, description="Consecutive evaluations below threshold.")


class DriftTrigger(ApiModel):
    psi_threshold: float = Field(default=0.25, gt=0)
    min_features: int = Field(default=1, ge=1)
    label_drift: bool = Field(default=False, description="Also fire on label drift.")


class ScheduleTrigger(ApiModel):
    interval: Duration | None = None
    cron: str | None = Field(default=None, pattern=r"^(\S+\s+){4}\S+$", description="Five-field cron expression (UTC).")
    start_time: datetime | None = None

    @model_validator(mode="after")
    def _one(self) -> ScheduleTrigger:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("schedule needs exactly one of interval and cron")
        return self

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "has(self.interval) != has(self.cron)", "message": "set exactly one of interval and cron"}
            ]
        }
    }


class ManualTrigger(ApiModel):
    request: str | None = Field(
        default=None,
        description="Change this value to request one retraining (so does the annotation modelpilot.dev/retrain-request).",
    )


class TriggersSpec(ApiModel):
    performance: PerformanceTrigger | None = None
    drift: DriftTrigger | None = None
    schedule: ScheduleTrigger | None = None
    manual: ManualTrigger = Field(default_factory=ManualTrigger)


class HyperparameterSearch(ApiModel):
    strategy: Literal["random", "grid"] = "random"
    trials: int = Field(default=4, ge=1, le=1000)
    space: dict[str, list[float | int | str]] = Field(default_factory=dict)


class EarlyStopping(ApiModel):
    patience: int = Field(default=3, ge=1)
    min_delta: float = Field(default=0.0, ge=0)


class TrainingSpec(ApiModel):
    template: dict[str, Any] = Field(description="A PodTemplateSpec for the training Job.")
    backoff_limit: int = Field(default=1, ge=0, le=10)
    active_deadline: Duration | None = None
    data_window: Duration = "30d"
    validation_split: float = Field(default=0.2, gt=0, lt=1)
    test_split: float = Field(default=0.2, gt=0, lt=1)
    hyperparameters: HyperparameterSearch = Field(default_factory=HyperparameterSearch)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    retries: int = Field(default=0, ge=0, le=10, description="New Jobs after a failed one, per trigger.")


class GateSpec(ApiModel):
    primary_metric: str = Field(default="f1", min_length=1)
    min_improvement: float = Field(default=0.0, ge=0)
    tolerance: float = Field(default=0.01, ge=0, description="Largest regression allowed on other metrics.")
    metrics: list[str] = Field(default_factory=lambda: ["accuracy", "f1"])
    thresholds: dict[str, float] = Field(default_factory=dict, description="Absolute minimums by metric.")


class DeploymentSpec(ApiModel):
    auto: bool = Field(default=False, description="Hand a candidate that passes the gate to a canary at once.")
    approve_version: str | None = Field(
        default=None,
        description="Approve deploying this candidate version (or annotate modelpilot.dev/approve-version).",
    )
    canary_template: dict[str, Any] = Field(
        default_factory=dict, description="CanaryRelease spec fields for the hand-off."
    )


class RetrainPolicySpec(ApiModel):
    """When and how to retrain a model, and what to do with the candidate."""

    model: str = Field(min_length=1, description="Registered model name in MLflow.")
    monitor_ref: LocalObjectReference | None = None
    mlflow: MlflowSettings
    experiment: str | None = None
    triggers: TriggersSpec = Field(default_factory=TriggersSpec)
    cooldown: Duration = "6h"
    training: TrainingSpec
    gate: GateSpec = Field(default_factory=GateSpec)
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)

    @model_validator(mode="after")
    def _monitor_for_monitor_triggers(self) -> RetrainPolicySpec:
        if (self.triggers.performance or self.triggers.drift) and self.monitor_ref is None:
            raise ValueError("monitorRef is required by the performance and drift triggers")
        return self

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.monitorRef) || !has(self.triggers) || "
                    "(!has(self.triggers.performance) && !has(self.triggers.drift))",
                    "message": "monitorRef is required by the performance and drift triggers",
                }
            ]
        }
    }


class TriggerRecord(ApiModel):
    type: TriggerType
    reason: str
    time: datetime


class RunStatus(ApiModel):
    number: int = Field(ge=1, description="The policy's run counter; Jobs are named <policy>-<number>-<attempt>.")
    job: str
    trigger: TriggerType
    reason: str
    started: datetime
    attempt: int = 1
    mlflow_run_id: str | None = None


class MetricComparison(ApiModel):
    metric: str
    champion: float | None = None
    challenger: float | None = None
    change: float | None = None
    passed: bool


class RetrainRecord(ApiModel):
    time: datetime
    trigger: TriggerType
    version: str | None = None
    primary_metric: float | None = None
    outcome: str
    message: str = ""


RetrainPhase = Literal["Idle", "Training", "Registering", "AwaitingApproval", "Deploying"]


class TriggerState(ApiModel):
    """Edge detection of the monitor-driven triggers: each fires once per excursion."""

    last_monitor_evaluation: datetime | None = None
    performance_streak: int = 0
    performance_armed: bool = True
    drift_armed: bool = True


class RetrainPolicyStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: RetrainPhase = "Idle"
    last_trigger: TriggerRecord | None = None
    last_result: str | None = None
    current_run: RunStatus | None = None
    runs: int = Field(default=0, ge=0, description="Training runs started so far; names the next Job.")
    last_finished: datetime | None = Field(default=None, description="When the last run ended (cooldown).")
    next_scheduled: datetime | None = None
    triggers: TriggerState = Field(default_factory=TriggerState)
    candidate_version: str | None = None
    champion_version: str | None = None
    comparison: list[MetricComparison] = Field(default_factory=list)
    canary: str | None = None
    handled_manual_request: str | None = None
    history: list[RetrainRecord] = Field(default_factory=list, max_length=20)
