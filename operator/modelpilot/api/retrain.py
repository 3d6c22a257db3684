"""The RetrainPolicy resource: when to retrain a model, how, and what happens to the result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from .common import ApiModel, Duration, LocalObjectReference, MlflowSettings, RegisteredModelName, ResourceStatus, Rule
from .cron import check_cron
from .notify import UNIQUE_CHANNEL_NAMES, DeliveryStatus, NotificationChannel

__all__ = [
    "DeploymentSpec",
    "DriftTrigger",
    "GateSpec",
    "HyperparameterSearch",
    "ManualTrigger",
    "MetricComparison",
    "PerformanceTrigger",
    "ProductionState",
    "RollbackGuard",
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
    """Retrain when the monitored quality falls below a threshold: one metric (metric and
    threshold), or several (thresholds) of which any or all must be below."""

    metric: QualityMetric = Field(
        default="accuracy", description="The monitor's quality metric (precision, recall, f1: macro). Default accuracy."
    )
    threshold: float | None = Field(default=None, ge=0, le=1, description="Retrain when the monitor's metric stays below this.")
    thresholds: dict[QualityMetric, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        max_length=4,
        description="Several metrics, each with its threshold (instead of metric and threshold).",
    )
    combine: Literal["any", "all"] = Field(
        default="any", description="With thresholds: fire when any metric is below its threshold, or only when all are."
    )
    sustained_evaluations: int = Field(default=1, ge=1, description="Consecutive evaluations below threshold.")

    rules: ClassVar[tuple[Rule[PerformanceTrigger], ...]] = (
        Rule(
            "has(self.threshold) != (has(self.thresholds) && size(self.thresholds) > 0)",
            "set either threshold (with metric) or thresholds",
            lambda trigger: (trigger.threshold is None) == bool(trigger.thresholds),
        ),
    )

    def limits(self) -> dict[str, float]:
        """Each watched metric and the threshold it must stay above."""
        if self.threshold is not None:
            return {self.metric: self.threshold}
        return {str(metric): limit for metric, limit in self.thresholds.items()}


class DriftTrigger(ApiModel):
    """Retrain when the monitor sees enough features drift."""

    psi_threshold: float = Field(default=0.25, gt=0, description="PSI at which a feature counts as drifted. Default 0.25.")
    min_features: int = Field(default=1, ge=1, description="Drifted features needed to fire. Default 1.")
    label_drift: bool = Field(default=False, description="Also fire on label drift.")


class ScheduleTrigger(ApiModel):
    """Retrain at fixed times: every interval, or on a cron schedule."""

    interval: Duration | None = Field(default=None, description="Time between runs.")
    cron: Annotated[str, Field(pattern=r"^(\S+\s+){4}\S+$"), AfterValidator(check_cron)] | None = Field(
        default=None, description="Five-field cron expression (UTC)."
    )
    start_time: datetime | None = Field(
        default=None,
        description="No run before this time (RFC 3339); intervals count from it. When unset, the first run comes "
        "one interval after the policy is first seen.",
    )

    rules: ClassVar[tuple[Rule[ScheduleTrigger], ...]] = (
        Rule(
            "has(self.interval) != has(self.cron)",
            "set exactly one of interval and cron",
            lambda schedule: (schedule.interval is None) != (schedule.cron is None),
        ),
    )


class ManualTrigger(ApiModel):
    """Retrain on request."""

    request: str | None = Field(
        default=None,
        description="Change this value to request one retraining (so does the annotation modelpilot.dev/retrain-request).",
    )


class TriggersSpec(ApiModel):
    """What starts a training run; any trigger that fires does, outside the cooldown."""

    performance: PerformanceTrigger | None = None
    drift: DriftTrigger | None = None
    schedule: ScheduleTrigger | None = None
    manual: ManualTrigger = Field(default_factory=ManualTrigger)


class HyperparameterSearch(ApiModel):
    """A hyperparameter search the training code runs (passed as MODELPILOT_HYPERPARAMETERS)."""

    strategy: Literal["random", "grid"] = Field(default="random", description="How trials are drawn. Default random.")
    trials: int = Field(default=4, ge=1, le=1000, description="Trials to run. Default 4.")
    space: dict[str, list[float | int | str]] = Field(
        default_factory=dict, description="Candidate values by hyperparameter name."
    )


class EarlyStopping(ApiModel):
    """Early stopping for the training code (passed as MODELPILOT_EARLY_STOPPING)."""

    patience: int = Field(default=3, ge=1, description="Epochs without improvement before stopping. Default 3.")
    min_delta: float = Field(default=0.0, ge=0, description="Smallest change that counts as improvement. Default 0.")


class TrainingSpec(ApiModel):
    """The training Job, and what it is told through its environment."""

    template: dict[str, Any] = Field(description="A PodTemplateSpec for the training Job.")
    backoff_limit: int = Field(default=1, ge=0, le=10, description="The Job's pod retries. Default 1.")
    active_deadline: Duration | None = Field(default=None, description="Longest a Job may run; unlimited when unset.")
    data_window: Duration = Field(
        default="30d", description="Training data ends when the run starts and reaches back this far. Default 30d."
    )
    validation_split: float = Field(
        default=0.2, gt=0, lt=1, description="Fraction of the data held out for validation. Default 0.2."
    )
    test_split: float = Field(default=0.2, gt=0, lt=1, description="Fraction of the data held out for testing. Default 0.2.")
    hyperparameters: HyperparameterSearch = Field(default_factory=HyperparameterSearch)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    retries: int = Field(default=0, ge=0, le=10, description="New Jobs after a failed one, per trigger.")


class GateSpec(ApiModel):
    """What a candidate's MLflow run must show against the champion's to be deployed."""

    primary_metric: str = Field(default="f1", min_length=1, description="The run metric that must improve. Default f1.")
    min_improvement: float = Field(
        default=0.0, ge=0, description="How much the primary metric must beat the champion's by. Default 0."
    )
    tolerance: float = Field(default=0.01, ge=0, description="Largest regression allowed on other metrics.")
    metrics: list[str] = Field(
        default_factory=lambda: ["accuracy", "f1"], description="Run metrics compared. Default [accuracy, f1]."
    )
    thresholds: dict[str, float] = Field(default_factory=dict, description="Absolute minimums by metric.")


class DeploymentSpec(ApiModel):
    """What happens to a candidate that passed the gate: a CanaryRelease, at once or once approved."""

    auto: bool = Field(default=False, description="Hand a candidate that passes the gate to a canary at once.")
    approve_version: str | None = Field(
        default=None,
        description="Approve deploying this candidate version (or annotate modelpilot.dev/approve-version).",
    )
    canary_template: dict[str, Any] = Field(default_factory=dict, description="CanaryRelease spec fields for the hand-off.")


class RollbackGuard(ApiModel):
    """Return serving to the previous champion when a version this policy promoted falls below a
    quality floor in production."""

    metric: QualityMetric = Field(default="accuracy", description="The monitor's quality metric watched. Default accuracy.")
    below: float = Field(ge=0, le=1, description="Roll back when the promoted version's metric stays below this.")
    for_evaluations: int = Field(default=3, ge=1, le=100, description="Consecutive monitor evaluations below. Default 3.")


class RetrainPolicySpec(ApiModel):
    """When and how to retrain a model, and what to do with the candidate."""

    model: RegisteredModelName
    monitor_ref: LocalObjectReference | None = Field(
        default=None, description="The ModelMonitor the performance and drift triggers read."
    )
    mlflow: MlflowSettings
    experiment: str | None = Field(default=None, description="MLflow experiment of the runs. Default <model>-retraining.")
    triggers: TriggersSpec = Field(default_factory=TriggersSpec)
    cooldown: Duration = Field(default="6h", description="Least time from the end of one run to the next start. Default 6h.")
    training: TrainingSpec
    gate: GateSpec = Field(default_factory=GateSpec)
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    rollback: RollbackGuard | None = Field(
        default=None,
        description="After a promotion, return to the previous champion through a CanaryRelease when the promoted "
        "version's quality stays below a floor (needs monitorRef).",
    )

    notifications: list[NotificationChannel] = Field(
        default_factory=list, max_length=8, description="Channels this resource's news is sent to."
    )

    rules: ClassVar[tuple[Rule[RetrainPolicySpec], ...]] = (
        UNIQUE_CHANNEL_NAMES,
        Rule(
            "has(self.monitorRef) || !has(self.triggers) || (!has(self.triggers.performance) && !has(self.triggers.drift))",
            "monitorRef is required by the performance and drift triggers",
            lambda spec: spec.monitor_ref is not None or (spec.triggers.performance is None and spec.triggers.drift is None),
            ".monitorRef",
        ),
        Rule(
            "has(self.monitorRef) || !has(self.rollback)",
            "monitorRef is required by rollback",
            lambda spec: spec.monitor_ref is not None or spec.rollback is None,
            ".monitorRef",
        ),
    )


class TriggerRecord(ApiModel):
    """A trigger that fired."""

    type: TriggerType = Field(description="performance, drift, schedule or manual.")
    reason: str = Field(description="What the trigger saw.")
    time: datetime = Field(description="When it fired.")


class RunStatus(ApiModel):
    """The training run in progress."""

    number: int = Field(ge=1, description="The policy's run counter; Jobs are named <policy>-<number>-<attempt>.")
    job: str = Field(description="Name of the current attempt's Job.")
    trigger: TriggerType = Field(description="The trigger that started the run.")
    reason: str = Field(description="What the trigger saw.")
    started: datetime = Field(description="When the current attempt started.")
    attempt: int = Field(default=1, description="1 for the first Job, one more for each retry.")
    mlflow_run_id: str | None = Field(default=None, description="The MLflow run the Job logged, once found.")


class MetricComparison(ApiModel):
    """One metric of the gate: candidate against champion."""

    metric: str = Field(description="The run metric.")
    champion: float | None = Field(default=None, description="The champion's value; none without a champion.")
    challenger: float | None = Field(default=None, description="The candidate's value.")
    change: float | None = Field(default=None, description="Candidate minus champion.")
    passed: bool = Field(description="The metric met the gate.")


class RetrainRecord(ApiModel):
    """A finished run."""

    time: datetime = Field(description="When the run finished.")
    trigger: TriggerType = Field(description="The trigger that started it.")
    version: str | None = Field(default=None, description="The registered candidate version, if any.")
    primary_metric: float | None = Field(default=None, description="The candidate's gate.primaryMetric.")
    outcome: str = Field(description="Failed, Rejected, Promoted or RolledBack.")
    message: str = Field(default="", description="Why, in one line.")


RetrainPhase = Literal["Idle", "Training", "Registering", "AwaitingApproval", "Deploying"]


class ProductionState(ApiModel):
    """The version this policy last put in production, watched by spec.rollback."""

    version: str = Field(description="The version serving since the last promotion (or rollback).")
    previous: str | None = Field(default=None, description="The champion it replaced: where a rollback returns.")
    since: datetime = Field(description="When it was promoted.")
    last_monitor_evaluation: datetime | None = Field(default=None, description="The monitor evaluation last counted.")
    streak: int = Field(default=0, ge=0, description="Evaluations in a row below spec.rollback.below.")
    evaluations: int = Field(default=0, ge=0, description="Monitor evaluations of this version since it serves.")
    quality: dict[str, float] = Field(
        default_factory=dict,
        description="Mean of each quality metric over those evaluations (MLflow gets it when it stops serving).",
    )
    armed: bool = Field(default=True, description="A rollback may start; false after one, until quality recovers.")
    rollback_canary: str | None = Field(default=None, description="The CanaryRelease returning to the previous version.")
    rollback_reason: str | None = Field(default=None, description="Why the rollback started.")
    rollbacks: int = Field(default=0, ge=0, description="Rollbacks this policy started; names the next one's canary.")
    handled_rollback_request: str | None = Field(
        default=None, description="The last modelpilot.dev/rollback-request annotation acted on."
    )


class TriggerState(ApiModel):
    """Edge detection of the monitor-driven triggers: each fires once per excursion."""

    last_monitor_evaluation: datetime | None = Field(default=None, description="The monitor evaluation last read.")
    performance_streak: int = Field(default=0, description="Evaluations in a row below the performance threshold.")
    performance_armed: bool = Field(default=True, description="The performance trigger may fire; false until quality recovers.")
    drift_armed: bool = Field(default=True, description="The drift trigger may fire; false until drift clears.")


class RetrainPolicyStatus(ResourceStatus):
    phase: RetrainPhase = Field(default="Idle", description="Idle, Training, Registering, AwaitingApproval or Deploying.")
    last_trigger: TriggerRecord | None = None
    last_result: str | None = Field(
        default=None, description="Outcome of the last run: Failed, Rejected, Promoted or RolledBack."
    )
    current_run: RunStatus | None = None
    runs: int = Field(default=0, ge=0, description="Training runs started so far; names the next Job.")
    last_finished: datetime | None = Field(default=None, description="When the last run ended (cooldown).")
    next_scheduled: datetime | None = Field(default=None, description="When the schedule trigger fires next.")
    triggers: TriggerState = Field(default_factory=TriggerState)
    candidate_version: str | None = Field(default=None, description="The registered version of the last candidate.")
    production: ProductionState | None = Field(default=None, description="What serves since this policy's last promotion.")
    champion_version: str | None = Field(default=None, description="The version the candidate was compared with.")
    comparison: list[MetricComparison] = Field(default_factory=list, description="The gate's comparison, primary metric first.")
    canary: str | None = Field(default=None, description="The CanaryRelease rolling out the candidate.")
    handled_manual_request: str | None = Field(
        default=None, description="The manual request value last acted on; a different value requests a run."
    )
    history: list[RetrainRecord] = Field(
        default_factory=list, max_length=20, description="Finished runs, newest last, at most 20."
    )
    notifications: list[DeliveryStatus] = Field(
        default_factory=list, max_length=8, description="How the latest news reached each channel."
    )
