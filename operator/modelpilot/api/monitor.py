"""The ModelMonitor resource: what to watch about one served model, and what was found."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from .common import (
    ApiModel,
    Condition,
    Duration,
    MlflowSettings,
    ObjectReference,
    PrometheusEndpoint,
    PromQLTemplate,
)

__all__ = [
    "AlertRecord",
    "BaselineSpec",
    "DegradationSpec",
    "DegradationStatus",
    "DriftSpec",
    "FeatureResult",
    "LabelDriftSpec",
    "LabelDriftStatus",
    "MetricsSpec",
    "ModelMonitor",
    "ModelMonitorSpec",
    "ModelMonitorStatus",
    "ModelRef",
    "MonitorSummary",
    "PerformanceSpec",
    "PerformanceStatus",
    "QualitySpec",
    "QualityStatus",
    "VersionSource",
]

QualityMetric = Literal["accuracy", "precision", "recall", "f1"]


class MlflowAliasRef(ApiModel):
    """A registered model alias in MLflow, resolved to a version at every evaluation."""

    registered_model: str = Field(min_length=1)
    alias: str = Field(default="champion", min_length=1)


class VersionSource(ApiModel):
    """Where the served version comes from: a fixed label value or an MLflow alias."""

    fixed: str | None = Field(default=None, min_length=1, description="A fixed `version` label value.")
    mlflow: MlflowAliasRef | None = Field(default=None, description="Resolve the version from an MLflow alias.")

    @model_validator(mode="after")
    def _exactly_one(self) -> VersionSource:
        if (self.fixed is None) == (self.mlflow is None):
            raise ValueError("set exactly one of version.fixed and version.mlflow")
        return self

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "has(self.fixed) != has(self.mlflow)", "message": "set exactly one of fixed and mlflow"}
            ]
        }
    }


class ModelRef(ApiModel):
    """The monitored model as it appears in metric labels."""

    name: str = Field(min_length=1, description="Value of the `model` label.")
    version: VersionSource | None = Field(
        default=None, description="Where the served version comes from; all versions when unset."
    )


class MetricsSpec(ApiModel):
    """Which metric names the model server exports, and per-query overrides."""

    preset: Literal["generic", "tfserving", "triton", "kserve"] = "generic"
    overrides: dict[str, PromQLTemplate] = Field(
        default_factory=dict,
        description="PromQL templates replacing a preset's query, by query name (see `modelpilot check --help`).",
    )


class PerformanceSpec(ApiModel):
    """Latency, throughput and errors over a short window."""

    window: Duration = "5m"
    latency_p99: float | None = Field(default=None, gt=0, description="Seconds; LatencyHigh above it.")
    latency_p95: float | None = Field(default=None, gt=0, description="Seconds; LatencyHigh above it.")
    error_rate: float | None = Field(default=None, ge=0, le=1, description="Fraction; ErrorRateHigh above it.")
    min_throughput: float | None = Field(default=None, ge=0, description="Requests per second.")


class QualitySpec(ApiModel):
    """Quality from late-arriving ground truth (model_feedback_total)."""

    window: Duration = "1d"
    min_samples: int = Field(default=100, ge=1)
    accuracy: float | None = Field(default=None, ge=0, le=1)
    precision: float | None = Field(default=None, ge=0, le=1)
    recall: float | None = Field(default=None, ge=0, le=1)
    f1: float | None = Field(default=None, ge=0, le=1)


class BaselineSpec(ApiModel):
    """The reference distribution: a Prometheus window or an MLflow profile."""

    offset: Duration | None = Field(
        default=None, description="Relative baseline: the window ending this long before the evaluation."
    )
    window: Duration | None = Field(default=None, description="Length of a relative baseline window.")
    start: datetime | None = Field(default=None, description="Absolute baseline start (RFC 3339).")
    end: datetime | None = Field(default=None, description="Absolute baseline end (RFC 3339).")
    mlflow_profile: bool = Field(
        default=False, description="Use the reference profile stored with the model version in MLflow."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> BaselineSpec:
        relative = self.offset is not None
        absolute = self.start is not None or self.end is not None
        if sum((relative, absolute, self.mlflow_profile)) != 1:
            raise ValueError("set exactly one baseline: offset (+window), start and end, or mlflowProfile")
        if absolute and (self.start is None or self.end is None or self.start >= self.end):
            raise ValueError("an absolute baseline needs start before end")
        return self


class DriftSpec(ApiModel):
    """Per-feature data drift, current window against a baseline."""

    enabled: bool = True
    window: Duration = "1d"
    baseline: BaselineSpec = Field(default_factory=lambda: BaselineSpec(offset="7d"))
    features: list[str] = Field(default_factory=list, description="Features to test; all exported when empty.")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["benjamini-hochberg", "bonferroni", "none"] = "benjamini-hochberg"
    effect_size: Literal["psi", "js", "wasserstein", "ks"] = "psi"
    effect_threshold: float = Field(default=0.1, ge=0)
    psi_bands: list[float] = Field(default_factory=lambda: [0.1, 0.25], min_length=2, max_length=2)
    min_samples: int = Field(default=100, ge=1)

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "!has(self.psiBands) || self.psiBands[0] < self.psiBands[1]", "message": "psiBands must be ascending"}
            ]
        }
    }

    @model_validator(mode="after")
    def _bands_ascending(self) -> DriftSpec:
        if self.psi_bands[0] >= self.psi_bands[1]:
            raise ValueError("psiBands must be ascending")
        return self


class LabelDriftSpec(ApiModel):
    """Prediction-class distribution, current window against the drift baseline."""

    enabled: bool = True
    alpha: float = Field(default=0.05, gt=0, lt=1)
    effect_threshold: float = Field(default=0.1, ge=0, description="PSI gate.")


class DegradationSpec(ApiModel):
    """Quality trend and concept drift over a long horizon."""

    enabled: bool = True
    metric: QualityMetric = "accuracy"
    horizon: Duration = "30d"
    step: Duration = "1d"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    detector: Literal["page-hinkley"] = "page-hinkley"
    delta: float = Field(default=0.005, ge=0, description="Page-Hinkley tolerance.")
    threshold: float = Field(default=0.05, gt=0, description="Page-Hinkley alarm threshold.")


class ModelMonitorSpec(ApiModel):
    """What to monitor about one served model."""

    model: ModelRef
    deployment: ObjectReference | None = Field(default=None, description="The serving Deployment.")
    prometheus: PrometheusEndpoint
    mlflow: MlflowSettings | None = None
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    interval: Duration = "5m"
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    label_drift: LabelDriftSpec = Field(default_factory=LabelDriftSpec)
    degradation: DegradationSpec = Field(default_factory=DegradationSpec)

    @model_validator(mode="after")
    def _mlflow_when_needed(self) -> ModelMonitorSpec:
        needs = (self.model.version is not None and self.model.version.mlflow is not None) or (
            self.drift.baseline.mlflow_profile
        )
        if needs and self.mlflow is None:
            raise ValueError("mlflow.trackingUri is required by model.version.mlflow or drift.baseline.mlflowProfile")
        return self


class MonitorSummary(ApiModel):
    """Headline figures for printer columns."""

    version: str | None = None
    accuracy: float | None = None
    f1: float | None = None
    latency_p99: float | None = None
    throughput: float | None = None
    error_rate: float | None = None
    drifted: str | None = Field(default=None, description="Drifted features as N/M.")


class PerformanceStatus(ApiModel):
    latency_mean: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    throughput: float | None = None
    error_rate: float | None = None
    batch_size_mean: float | None = None
    ready_replicas: int | None = None
    desired_replicas: int | None = None


class ClassQuality(ApiModel):
    name: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted_share: float | None = None


class QualityStatus(ApiModel):
    samples: int
    accuracy: float | None = None
    precision_macro: float | None = None
    recall_macro: float | None = None
    f1_macro: float | None = None
    precision_weighted: float | None = None
    recall_weighted: float | None = None
    f1_weighted: float | None = None
    classes: list[ClassQuality] = Field(default_factory=list)


class FeatureResult(ApiModel):
    name: str
    kind: Literal["numerical", "categorical"]
    verdict: Literal["Drift", "NoDrift", "InsufficientData"]
    psi: float | None = None
    psi_expected: float | None = None
    psi_band: str | None = None
    ks: float | None = None
    js: float | None = None
    wasserstein: float | None = None
    chi2: float | None = None
    pvalue: float | None = None
    corrected_pvalue: float | None = None
    test: str | None = None
    reference_samples: int | None = None
    current_samples: int | None = None
    unseen_categories: list[str] = Field(default_factory=list)


class LabelDriftStatus(ApiModel):
    verdict: Literal["Drift", "NoDrift", "InsufficientData"]
    pvalue: float | None = None
    psi: float | None = None
    class_shift: dict[str, float] = Field(default_factory=dict, description="Current minus baseline share per class.")


class DegradationStatus(ApiModel):
    metric: str
    points: int
    direction: Literal["increasing", "decreasing", "none", "insufficient"]
    tau: float | None = None
    pvalue: float | None = None
    sen_slope: float | None = Field(default=None, description="Change of the metric per day.")
    change: float | None = Field(default=None, description="Fitted change from the first to the last point.")
    change_points: list[datetime] = Field(default_factory=list)


class AlertRecord(ApiModel):
    time: datetime
    type: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["active", "resolved"]
    message: str = ""


class ModelMonitorStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    last_evaluation: datetime | None = Field(default=None, description="When the last evaluation ran.")
    last_success: datetime | None = Field(default=None, description="When every query last answered.")
    next_evaluation: datetime | None = Field(default=None, description="Not before this time (interval or backoff).")
    consecutive_failures: int = Field(default=0, ge=0, description="Evaluations in a row with a failed query.")
    queries: int | None = Field(default=None, description="Prometheus queries in the last evaluation.")
    summary: MonitorSummary | None = None
    performance: PerformanceStatus | None = None
    quality: QualityStatus | None = None
    features: list[FeatureResult] = Field(default_factory=list)
    label_drift: LabelDriftStatus | None = None
    degradation: DegradationStatus | None = None
    alerts: list[AlertRecord] = Field(default_factory=list, max_length=20)


class ModelMonitor(ApiModel):
    """A ModelMonitor: spec and status."""

    spec: ModelMonitorSpec
    status: ModelMonitorStatus | None = None
