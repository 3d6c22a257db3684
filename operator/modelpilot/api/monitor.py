"""The ModelMonitor resource: what to watch about one served model, and what was found."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import AfterValidator, Field

from .common import (
    ApiModel,
    Duration,
    MlflowSettings,
    ObjectReference,
    PrometheusEndpoint,
    PromQLTemplate,
    RegisteredModelName,
    ResourceStatus,
    Rule,
)
from .notify import UNIQUE_CHANNEL_NAMES, DeliveryStatus, NotificationChannel, Severity

__all__ = [
    "ALERT_NAMES",
    "AlertName",
    "AlertOverride",
    "AlertRecord",
    "AlertingSpec",
    "ContainerResources",
    "GpuResources",
    "PodSelector",
    "Recommendation",
    "ResourceCost",
    "ResourcePrices",
    "ResourcesSpec",
    "ResourcesStatus",
    "UsageFigures",
    "DashboardSpec",
    "BaselineSpec",
    "DataQualitySpec",
    "DataQualityStatus",
    "FeatureQuality",
    "DegradationSpec",
    "DegradationStatus",
    "DriftSpec",
    "FeatureResult",
    "FiringAlert",
    "LabelDriftSpec",
    "LabelDriftStatus",
    "MetricsSpec",
    "ModelMonitorSpec",
    "ModelMonitorStatus",
    "ModelRef",
    "MonitorSummary",
    "PerformanceSpec",
    "PerformanceStatus",
    "QUERY_NAMES",
    "QualitySpec",
    "QualityStatus",
    "QueryName",
    "VersionSource",
]

QualityMetric = Literal["accuracy", "precision", "recall", "f1"]


class MlflowAliasRef(ApiModel):
    """A registered model alias in MLflow, resolved to a version at every evaluation."""

    registered_model: RegisteredModelName
    alias: str = Field(default="champion", min_length=1, description="Alias whose version is served. Default champion.")


class VersionSource(ApiModel):
    """Where the served version comes from: a fixed label value or an MLflow alias."""

    fixed: str | None = Field(default=None, min_length=1, description="A fixed `version` label value.")
    mlflow: MlflowAliasRef | None = Field(default=None, description="Resolve the version from an MLflow alias.")

    rules: ClassVar[tuple[Rule[VersionSource], ...]] = (
        Rule(
            "has(self.fixed) != has(self.mlflow)",
            "set exactly one of fixed and mlflow",
            lambda version: (version.fixed is None) != (version.mlflow is None),
        ),
    )


class ModelRef(ApiModel):
    """The monitored model as it appears in metric labels."""

    name: str = Field(min_length=1, description="Value of the `model` label.")
    version: VersionSource | None = Field(
        default=None, description="Where the served version comes from; all versions when unset."
    )


QueryName = Literal[
    "latencyBuckets",
    "latencySum",
    "requests",
    "predictions",
    "feedback",
    "featureBuckets",
    "featureCategories",
    "featureMissing",
    "featureSums",
    "batchSize",
    # The serving pods' resources (spec.resources): cAdvisor, kube-state-metrics and DCGM names.
    "cpuUsage",
    "cpuThrottling",
    "memoryWorkingSet",
    "resourceRequests",
    "resourceLimits",
    "restarts",
    "oomKills",
    "gpuUtilization",
    "gpuMemoryUsed",
    "gpuMemoryFree",
    "gpuTemperature",
    "gpuPower",
    "gpuXidErrors",
]
"""The queries of a metrics preset, each of which ``metrics.overrides`` may replace."""

QUERY_NAMES: tuple[str, ...] = get_args(QueryName)


def _check_query_name(name: str) -> str:
    if name not in QUERY_NAMES:
        raise ValueError(f"unknown query {name!r}; overrides replace one of {', '.join(QUERY_NAMES)}")
    return name


# Typed str rather than QueryName, so the overrides read as the Mapping[str, str] that query
# rendering takes; the enum reaches the CRD, which refuses the same keys.
_OverriddenQuery = Annotated[str, AfterValidator(_check_query_name), Field(json_schema_extra={"enum": list(QUERY_NAMES)})]


class MetricsSpec(ApiModel):
    """Which metric names the model server exports, and per-query overrides."""

    preset: Literal["generic", "tfserving", "triton", "kserve"] = Field(
        default="generic",
        description="The model server whose metric names the queries use: generic (the modelpilot instrumentation), "
        "tfserving, triton or kserve. Default generic.",
    )
    overrides: dict[_OverriddenQuery, PromQLTemplate] = Field(
        default_factory=dict,
        max_length=len(QUERY_NAMES),
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
    min_samples: int = Field(
        default=100, ge=1, description="Labelled predictions in the window needed to judge quality. Default 100."
    )
    accuracy: float | None = Field(default=None, ge=0, le=1, description="Fraction; PerformanceDegraded below it.")
    precision: float | None = Field(default=None, ge=0, le=1, description="Macro average; PerformanceDegraded below it.")
    recall: float | None = Field(default=None, ge=0, le=1, description="Macro average; PerformanceDegraded below it.")
    f1: float | None = Field(default=None, ge=0, le=1, description="Macro average; PerformanceDegraded below it.")


class BaselineSpec(ApiModel):
    """The reference distribution: a Prometheus window or an MLflow profile."""

    offset: Duration | None = Field(
        default=None, description="Relative baseline: the window ending this long before the evaluation."
    )
    window: Duration | None = Field(default=None, description="Length of a relative baseline window.")
    start: datetime | None = Field(default=None, description="Absolute baseline start (RFC 3339).")
    end: datetime | None = Field(default=None, description="Absolute baseline end (RFC 3339).")
    mlflow_profile: bool = Field(default=False, description="Use the reference profile stored with the model version in MLflow.")

    rules: ClassVar[tuple[Rule[BaselineSpec], ...]] = (
        Rule(
            "(has(self.offset) ? 1 : 0) + (has(self.start) || has(self.end) ? 1 : 0) + (self.mlflowProfile ? 1 : 0) == 1",
            "set exactly one baseline: offset (with window), start and end, or mlflowProfile",
            lambda baseline: (
                sum(
                    (baseline.offset is not None, baseline.start is not None or baseline.end is not None, baseline.mlflow_profile)
                )
                == 1
            ),
        ),
        Rule(
            "(!has(self.start) && !has(self.end)) || (has(self.start) && has(self.end) && self.start < self.end)",
            "an absolute baseline needs start before end",
            lambda baseline: (
                (baseline.start is None and baseline.end is None)
                or (baseline.start is not None and baseline.end is not None and baseline.start < baseline.end)
            ),
        ),
    )


class DriftSpec(ApiModel):
    """Per-feature data drift, current window against a baseline."""

    enabled: bool = Field(default=True, description="Test features for drift. Default true.")
    window: Duration = "1d"
    baseline: BaselineSpec = Field(
        default_factory=lambda: BaselineSpec(offset="7d"), description="Default: the window ending 7d earlier."
    )
    features: list[str] = Field(default_factory=list, description="Features to test; all exported when empty.")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of each test, after correction. Default 0.05.")
    correction: Literal["benjamini-hochberg", "bonferroni", "none"] = Field(
        default="benjamini-hochberg", description="Correction of p-values for testing many features at once."
    )
    effect_size: Literal["psi", "js", "wasserstein", "ks"] = Field(
        default="psi",
        description="Effect size a drifting feature must also reach: PSI (in excess of its no-drift expectation), "
        "Jensen-Shannon distance, Wasserstein distance normalised by the baseline's spread, or the KS statistic.",
    )
    effect_threshold: float = Field(default=0.1, ge=0, description="Smallest effect size that counts as drift. Default 0.1.")
    psi_bands: list[float] = Field(
        default_factory=lambda: [0.1, 0.25],
        min_length=2,
        max_length=2,
        description="PSI from which a shift is reported as moderate and as significant. Default [0.1, 0.25].",
    )
    min_samples: int = Field(
        default=100, ge=1, description="Observations needed in each window; fewer gives InsufficientData. Default 100."
    )

    rules: ClassVar[tuple[Rule[DriftSpec], ...]] = (
        Rule(
            "!has(self.psiBands) || self.psiBands[0] < self.psiBands[1]",
            "psiBands must be ascending",
            lambda drift: drift.psi_bands[0] < drift.psi_bands[1],
            ".psiBands",
        ),
    )


class DataQualitySpec(ApiModel):
    """Missing values, values outside the reference's range and unseen categories, per feature,
    over the drift window against the drift baseline."""

    enabled: bool = Field(default=True, description="Check the features' data quality. Default true.")
    missing_rate: float = Field(
        default=0.05, ge=0, le=1, description="Share of a feature's values missing (None, NaN) above which DataQuality is True."
    )
    out_of_range_rate: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Share of a numerical feature's values outside the baseline's range (below its lowest non-empty "
        "bucket or above its highest) above which DataQuality is True. Default 0.01.",
    )
    unseen_rate: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Share of a categorical feature's values in categories the baseline never saw above which "
        "DataQuality is True. Default 0.01.",
    )
    min_samples: int = Field(
        default=100, ge=1, description="Values (missing included) a feature needs in the window to be judged. Default 100."
    )


class LabelDriftSpec(ApiModel):
    """Prediction-class distribution, current window against the drift baseline."""

    enabled: bool = Field(default=True, description="Test the predicted classes for drift. Default true.")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the test. Default 0.05.")
    effect_threshold: float = Field(
        default=0.1, ge=0, description="Smallest PSI, in excess of its no-drift expectation, that counts as drift."
    )


class DegradationSpec(ApiModel):
    """Quality trend and concept drift over a long horizon."""

    enabled: bool = Field(default=True, description="Watch the quality trend. Default true.")
    metric: QualityMetric = Field(default="accuracy", description="The quality metric followed. Default accuracy.")
    horizon: Duration = Field(default="30d", description="How far back the series reaches. Default 30d.")
    step: Duration = Field(default="1d", description="Spacing of the series' points. Default 1d.")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the Mann-Kendall trend test. Default 0.05.")
    detector: Literal["page-hinkley", "adwin"] = Field(
        default="page-hinkley",
        description="Sequential detector of a downward shift (concept drift): page-hinkley, or adwin (Bifet and "
        "Gavalda's adaptive window; for accuracy it follows every label's outcome, for other metrics the series' "
        "points, which needs long series or large shifts).",
    )
    delta: float = Field(default=0.005, ge=0, description="Page-Hinkley tolerance.")
    threshold: float = Field(default=0.05, gt=0, description="Page-Hinkley alarm threshold.")
    adwin_delta: float = Field(
        default=0.002,
        gt=0,
        lt=1,
        description="ADWIN's confidence: while quality holds steady, a false alarm at a point has at most this "
        "probability. Default 0.002.",
    )


#: The alerts a monitor's rules may hold; their expressions, defaults and severities are one
#: table in the reconcile layer (reconcile/monitor/alerts.py), documented in the README.
AlertName = Literal[
    "ModelUnhealthy",
    "ModelAccuracyLow",
    "ModelErrorRateHigh",
    "ModelLatencyHigh",
    "ModelTrafficAbsent",
    "ModelFeatureDrift",
    "ModelLabelDrift",
    "ModelConceptDrift",
    "ModelMonitorStale",
    "ModelMonitorFailing",
    "ModelResourcePressure",
    "ModelOverprovisioned",
    "ModelDataQuality",
]
ALERT_NAMES: tuple[AlertName, ...] = get_args(AlertName)

_RuleLabelKey = Annotated[str, Field(max_length=63, pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]


class AlertOverride(ApiModel):
    """Changes to one generated alert."""

    enabled: bool = Field(default=True, description="Generate this alert. Default true.")
    threshold: float | None = Field(
        default=None, description="The alert's limit; default the spec's own threshold, else the monitoring guide's."
    )
    hold: Duration | None = Field(
        default=None, alias="for", description="How long the expression must hold before the alert fires (its `for:`)."
    )
    severity: Severity | None = Field(default=None, description="The alert's severity label; default from the table.")


class AlertingSpec(ApiModel):
    """Prometheus alert rules generated from this monitor."""

    prometheus_rule: bool = Field(
        default=True,
        description="Own a PrometheusRule (monitoring.coreos.com/v1) with the rules, where its CRD is installed. Default true.",
    )
    rule_labels: dict[_RuleLabelKey, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict,
        max_length=16,
        description="Labels on the PrometheusRule, added to the operator's, so a Prometheus ruleSelector matches it.",
    )
    runbook_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Base of the runbook_url annotation; the alert's name is appended as an anchor.",
    )
    min_requests: int = Field(
        default=100,
        ge=1,
        description="Requests in the performance window below which latency and error alerts stay silent. Default 100.",
    )
    alerts: dict[AlertName, AlertOverride] = Field(
        default_factory=dict, max_length=len(ALERT_NAMES), description="Per-alert changes, by alert name."
    )


class DashboardSpec(ApiModel):
    """Grafana dashboards generated from this monitor."""

    config_map: bool = Field(
        default=False, description="Own a ConfigMap labelled grafana_dashboard=1 (the Grafana sidecar convention)."
    )
    grafana_operator: bool = Field(default=False, description="Own a GrafanaDashboard (grafana.integreatly.org/v1beta1).")
    instance_selector: dict[_RuleLabelKey, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=16, description="Labels of the Grafana instances a GrafanaDashboard is for."
    )


class PodSelector(ApiModel):
    """The serving pods, by their labels as kube-state-metrics exports them (``kube_pod_labels``)."""

    match_labels: dict[_RuleLabelKey, Annotated[str, Field(max_length=63)]] = Field(
        min_length=1,
        max_length=16,
        description="Pod labels; kube-state-metrics must export them (its --metric-labels-allowlist).",
    )


class ResourcePrices(ApiModel):
    """Prices per resource and hour, in any one currency, for a cost figure."""

    cpu_core_hour: float | None = Field(default=None, ge=0, description="Price of one requested CPU core for an hour.")
    memory_gib_hour: float | None = Field(
        default=None, ge=0, alias="memoryGiBHour", description="Price of one requested GiB of memory for an hour."
    )
    gpu_hour: float | None = Field(default=None, ge=0, description="Price of one GPU for an hour.")


class ResourcesSpec(ApiModel):
    """CPU, memory and GPU use of the serving pods: pressure, waste, and right-sizing advice."""

    enabled: bool = Field(default=False, description="Watch the serving pods' resources. Default false.")
    pods: PodSelector | None = Field(
        default=None, description="The serving pods; default the pods of spec.deployment (by their ReplicaSet names)."
    )
    container: str | None = Field(
        default=None, min_length=1, max_length=63, description="Only this container of the pods; default all of them."
    )
    horizon: Duration = Field(default="7d", description="History behind averages, peaks and recommendations. Default 7d.")
    step: Duration = Field(default="5m", description="Spacing of the usage samples read over the horizon. Default 5m.")
    window: Duration = Field(
        default="1h", description="Recent window judged for pressure: throttling, memory, OOM kills, GPU errors. Default 1h."
    )
    min_history: Duration = Field(
        default="1d", description="Usage history needed before recommending or calling pods overprovisioned. Default 1d."
    )
    cpu_percentile: float = Field(
        default=0.95, gt=0, le=1, description="Percentile of CPU usage a CPU request covers (KRR's rule). Default 0.95."
    )
    memory_margin: float = Field(
        default=0.15, ge=0, le=10, description="Margin over peak memory for memory requests and limits. Default 0.15."
    )
    throttling: float = Field(
        default=0.25, gt=0, le=1, description="Fraction of CFS periods throttled from which a container is under pressure."
    )
    memory_limit_ratio: float = Field(
        default=0.9, gt=0, le=1, description="Working set over the memory limit from which a container is under pressure."
    )
    gpu_temperature: float = Field(default=85.0, gt=0, description="GPU temperature (C) from which a GPU is under pressure.")
    overprovisioned_factor: float = Field(
        default=2.0, gt=1, description="A request this many times its recommendation is overprovisioned. Default 2."
    )
    gpu_utilization: float = Field(
        default=0.2, gt=0, le=1, description="Average GPU utilisation below which a GPU is under-used. Default 0.2."
    )
    prices: ResourcePrices | None = Field(default=None, description="Prices for the cost of requests now and as recommended.")


class ModelMonitorSpec(ApiModel):
    """What to monitor about one served model."""

    model: ModelRef
    deployment: ObjectReference | None = Field(default=None, description="The serving Deployment, for replica counts in status.")
    prometheus: PrometheusEndpoint
    mlflow: MlflowSettings | None = None
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    interval: Duration = Field(default="5m", description="Time between evaluations. Default 5m.")
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    label_drift: LabelDriftSpec = Field(default_factory=LabelDriftSpec)
    data_quality: DataQualitySpec = Field(default_factory=DataQualitySpec)
    degradation: DegradationSpec = Field(default_factory=DegradationSpec)
    alerting: AlertingSpec = Field(default_factory=AlertingSpec)
    dashboard: DashboardSpec = Field(default_factory=DashboardSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)

    notifications: list[NotificationChannel] = Field(
        default_factory=list, max_length=8, description="Channels this resource's news is sent to."
    )

    rules: ClassVar[tuple[Rule[ModelMonitorSpec], ...]] = (
        UNIQUE_CHANNEL_NAMES,
        Rule(
            "has(self.mlflow) || (!(has(self.model.version) && has(self.model.version.mlflow))"
            " && !(has(self.drift) && has(self.drift.baseline) && self.drift.baseline.mlflowProfile))",
            "mlflow.trackingUri is required by model.version.mlflow and drift.baseline.mlflowProfile",
            lambda spec: (
                spec.mlflow is not None
                or (
                    not (spec.model.version is not None and spec.model.version.mlflow is not None)
                    and not spec.drift.baseline.mlflow_profile
                )
            ),
            ".mlflow",
        ),
        Rule(
            "!has(self.resources) || !self.resources.enabled || has(self.resources.pods) || has(self.deployment)",
            "resources.enabled needs the serving pods: set spec.deployment or resources.pods",
            lambda spec: not spec.resources.enabled or spec.resources.pods is not None or spec.deployment is not None,
            ".resources",
        ),
    )


class MonitorSummary(ApiModel):
    """Headline figures for printer columns."""

    version: str | None = Field(default=None, description="The served version evaluated.")
    accuracy: float | None = Field(default=None, description="Fraction of labelled predictions that were right.")
    f1: float | None = Field(default=None, description="Macro-averaged F1.")
    latency_p99: float | None = Field(default=None, description="99th percentile latency, seconds.")
    throughput: float | None = Field(default=None, description="Requests per second.")
    error_rate: float | None = Field(default=None, description="Fraction of requests that failed.")
    drifted: str | None = Field(default=None, description="Drifted features as N/M.")
    accuracy_text: str | None = Field(default=None, max_length=16, description="accuracy as a percentage, for reading.")
    latency_p99_text: str | None = Field(
        default=None, max_length=16, description="latencyP99 with its unit (us, ms, s), for reading."
    )
    error_rate_text: str | None = Field(default=None, max_length=16, description="errorRate as a percentage, for reading.")


class PerformanceStatus(ApiModel):
    """Serving performance over spec.performance.window."""

    latency_mean: float | None = Field(default=None, description="Mean latency, seconds.")
    latency_p50: float | None = Field(default=None, description="Median latency, seconds.")
    latency_p95: float | None = Field(default=None, description="95th percentile latency, seconds.")
    latency_p99: float | None = Field(default=None, description="99th percentile latency, seconds.")
    throughput: float | None = Field(default=None, description="Requests per second.")
    error_rate: float | None = Field(default=None, description="Fraction of requests that failed.")
    batch_size_mean: float | None = Field(default=None, description="Mean batch size, where the server reports it.")
    ready_replicas: int | None = Field(default=None, description="Ready replicas of spec.deployment.")
    desired_replicas: int | None = Field(default=None, description="Desired replicas of spec.deployment.")


class ClassQuality(ApiModel):
    """Quality of the predictions of one class."""

    name: str = Field(description="The class label.")
    precision: float = Field(description="Fraction of predictions of this class that were right.")
    recall: float = Field(description="Fraction of this class's true cases predicted as it.")
    f1: float = Field(description="Harmonic mean of precision and recall.")
    support: int = Field(description="Labelled cases of this class in the window.")
    predicted_share: float | None = Field(default=None, description="Fraction of all predictions that were this class.")


class QualityStatus(ApiModel):
    """Quality from the labelled predictions of spec.quality.window."""

    samples: int = Field(description="Labelled predictions in the window.")
    accuracy: float | None = Field(default=None, description="Fraction of labelled predictions that were right.")
    precision_macro: float | None = Field(default=None, description="Precision averaged over classes.")
    recall_macro: float | None = Field(default=None, description="Recall averaged over classes.")
    f1_macro: float | None = Field(default=None, description="F1 averaged over classes.")
    precision_weighted: float | None = Field(default=None, description="Precision averaged over classes by support.")
    recall_weighted: float | None = Field(default=None, description="Recall averaged over classes by support.")
    f1_weighted: float | None = Field(default=None, description="F1 averaged over classes by support.")
    classes: list[ClassQuality] = Field(default_factory=list, description="Per-class quality.")


class FeatureResult(ApiModel):
    """The drift test of one feature, current window against the baseline."""

    name: str = Field(description="The feature.")
    kind: Literal["numerical", "categorical"] = Field(description="Whether values were bucketed or counted by category.")
    verdict: Literal["Drift", "NoDrift", "InsufficientData"] = Field(
        description="Drift when the corrected test and the effect-size gate both say so."
    )
    psi: float | None = Field(default=None, description="Population stability index.")
    psi_expected: float | None = Field(default=None, description="PSI expected without drift at these sample sizes.")
    psi_band: str | None = Field(default=None, description="none, moderate or significant, by spec.drift.psiBands.")
    ks: float | None = Field(default=None, description="Kolmogorov-Smirnov statistic (numerical features).")
    js: float | None = Field(default=None, description="Jensen-Shannon distance.")
    wasserstein: float | None = Field(
        default=None, description="Wasserstein distance over the baseline's spread (numerical features)."
    )
    chi2: float | None = Field(default=None, description="Chi-square statistic.")
    pvalue: float | None = Field(default=None, description="p-value of the test, uncorrected.")
    corrected_pvalue: float | None = Field(default=None, description="p-value after spec.drift.correction.")
    test: str | None = Field(default=None, description="The test behind the p-value, or why none ran.")
    reference_samples: int | None = Field(default=None, description="Observations in the baseline.")
    current_samples: int | None = Field(default=None, description="Observations in the current window.")
    unseen_categories: list[str] = Field(default_factory=list, description="Categories absent from the baseline.")
    ks_pvalue: float | None = Field(
        default=None,
        description="p-value of the two-sample KS test (numerical features), beside the chi-square's; it does not "
        "decide the verdict. From bucketed data it takes KS D at the bucket edges and the asymptotic Kolmogorov "
        "distribution: approximate, and conservative (never smaller than the exact test's).",
    )
    reference_mean: float | None = Field(
        default=None, description="Mean of the baseline's values (numerical; from the histogram's sums and counts)."
    )
    current_mean: float | None = Field(default=None, description="Mean of the current window's values (numerical).")
    mean_change_percent: float | None = Field(
        default=None, description="Current mean against the baseline's, in percent of the baseline's magnitude."
    )


class FeatureQuality(ApiModel):
    """The data quality of one feature over the drift window."""

    name: str = Field(description="The feature.")
    values: int = Field(description="Values seen in the window, missing ones included.")
    missing_rate: float | None = Field(default=None, description="Share of values missing (None, NaN, infinite).")
    out_of_range_rate: float | None = Field(
        default=None,
        description="Share of values below the baseline's lowest non-empty bucket or above its highest (numerical).",
    )
    unseen_rate: float | None = Field(
        default=None, description="Share of values in categories the baseline never saw (categorical)."
    )
    verdict: Literal["Ok", "Problem", "InsufficientData"] = Field(description="Whether a figure passed its limit.")


class DataQualityStatus(ApiModel):
    """Missing values, out-of-range values and unseen categories per feature."""

    features: list[FeatureQuality] = Field(default_factory=list, description="Per feature, by name.")


class LabelDriftStatus(ApiModel):
    """The drift test of the predicted classes."""

    verdict: Literal["Drift", "NoDrift", "InsufficientData"] = Field(description="Outcome of the test.")
    pvalue: float | None = Field(default=None, description="p-value of the chi-square test.")
    psi: float | None = Field(default=None, description="Population stability index of the class shares.")
    class_shift: dict[str, float] = Field(default_factory=dict, description="Current minus baseline share per class.")
    reference_counts: dict[str, float] = Field(default_factory=dict, description="Predictions per class in the baseline.")
    current_counts: dict[str, float] = Field(default_factory=dict, description="Predictions per class in the current window.")


class DegradationStatus(ApiModel):
    """The trend of spec.degradation.metric over the horizon, and downward shifts in it."""

    metric: str = Field(description="The quality metric followed.")
    points: int = Field(description="Points in the series with enough labels.")
    direction: Literal["increasing", "decreasing", "none", "insufficient"] = Field(
        description="Significant trend, none, or too few points to tell."
    )
    tau: float | None = Field(default=None, description="Kendall's tau of the metric against time.")
    pvalue: float | None = Field(default=None, description="p-value of the Mann-Kendall test.")
    sen_slope: float | None = Field(default=None, description="Change of the metric per day.")
    change: float | None = Field(default=None, description="Fitted change from the first to the last point.")
    change_points: list[datetime] = Field(
        default_factory=list, description="Where spec.degradation.detector found a downward shift."
    )
    detector: str | None = Field(default=None, description="The detector that looked for shifts.")
    before: float | None = Field(default=None, description="The metric before the latest downward shift.")
    after: float | None = Field(default=None, description="The metric after the latest downward shift.")
    magnitude: float | None = Field(default=None, description="after minus before: how far the metric moved.")


class UsageFigures(ApiModel):
    """One figure per replica: now, and its average and peak over spec.resources.horizon."""

    current: float | None = Field(default=None, description="At the evaluation (the latest sample).")
    average: float | None = Field(default=None, description="Mean over the horizon.")
    peak: float | None = Field(default=None, description="Largest over the horizon.")


class Recommendation(ApiModel):
    """A request or limit to set, the rule that gave it and the figures the rule took."""

    resource: Literal["cpu", "memory"] = Field(description="The resource.")
    kind: Literal["request", "limit"] = Field(description="Request or limit.")
    current: str | None = Field(default=None, description="What the pods have now, as a quantity; unset when absent.")
    recommended: str | None = Field(default=None, description="The quantity to set; absent to leave it unset.")
    rule: str = Field(description="The rule, named: e.g. `krr: p95 of CPU usage`.")
    inputs: dict[str, float] = Field(default_factory=dict, description="The figures the rule took, by name.")


class GpuResources(ApiModel):
    """The GPUs of one container, by DCGM exporter names."""

    devices: int = Field(description="GPUs seen over the horizon.")
    utilization: UsageFigures = Field(description="Fraction of time a kernel ran (DCGM_FI_DEV_GPU_UTIL / 100).")
    memory_used: UsageFigures = Field(description="Frame buffer held, bytes: allocated, not necessarily in use.")
    memory_total: float | None = Field(default=None, description="Frame buffer of the GPUs, bytes (used + free).")
    temperature: UsageFigures = Field(description="Hottest GPU, degrees Celsius.")
    power: UsageFigures = Field(description="Power draw, watts.")
    xid_error: int | None = Field(default=None, description="The last XID error code in the window; absent when none.")
    advice: str | None = Field(default=None, description="Under-use or memory headroom, in words.")


class ContainerResources(ApiModel):
    """One container of the serving pods: figures per replica, pressure signs, and recommendations."""

    name: str = Field(description="The container.")
    pods: int = Field(description="Pods seen over the horizon.")
    cpu_usage: UsageFigures = Field(description="CPU cores used.")
    cpu_request: float | None = Field(default=None, description="CPU request, cores.")
    cpu_limit: float | None = Field(default=None, description="CPU limit, cores.")
    cpu_throttled: UsageFigures = Field(description="Fraction of CFS periods throttled (worst replica).")
    memory_working_set: UsageFigures = Field(description="Memory working set, bytes.")
    memory_request: float | None = Field(default=None, description="Memory request, bytes.")
    memory_limit: float | None = Field(default=None, description="Memory limit, bytes.")
    restarts: int | None = Field(default=None, description="Restarts in spec.resources.window.")
    oom_kills: int | None = Field(default=None, description="Restarts after an OOM kill in spec.resources.window.")
    gpu: GpuResources | None = Field(default=None, description="The container's GPUs, where DCGM metrics name it.")
    recommendations: list[Recommendation] = Field(default_factory=list, description="Requests and limits to set.")


class ResourceCost(ApiModel):
    """What the requests cost at spec.resources.prices, for all replicas."""

    current_hourly: float = Field(description="The requests now, per hour.")
    recommended_hourly: float = Field(description="The recommended requests, per hour.")
    monthly_saving: float = Field(description="Saved over 30 days by the recommendation (negative: it costs more).")


class ResourcesStatus(ApiModel):
    """The serving pods' resources over spec.resources.horizon, and right-sizing advice."""

    horizon: str = Field(description="The horizon of averages, peaks and recommendations.")
    history: str | None = Field(default=None, description="How much of the horizon had usage samples.")
    replicas: int | None = Field(default=None, description="Pods running at the evaluation.")
    containers: list[ContainerResources] = Field(default_factory=list, max_length=20, description="Per container.")
    batch_size_mean: float | None = Field(default=None, description="Mean batch size, where the server reports it.")
    patch: str | None = Field(default=None, description="The recommendation as a strategic merge patch of the Deployment (JSON).")
    command: str | None = Field(default=None, description="The kubectl command that applies the patch.")
    cost: ResourceCost | None = Field(default=None, description="Cost of the requests, where prices are set.")


class AlertRecord(ApiModel):
    """A condition that turned bad, or good again."""

    time: datetime = Field(description="When the condition changed.")
    type: str = Field(description="The condition type.")
    severity: Severity = Field(description="How urgent the condition is.")
    state: Literal["active", "resolved"] = Field(description="active when it turned bad, resolved when it recovered.")
    message: str = Field(default="", description="The condition's message at the time.")


class FiringAlert(ApiModel):
    """An alert of this monitor's rules that Prometheus has firing now."""

    name: str = Field(description="The alert's name.")
    severity: str = Field(default="", description="Its severity label.")
    feature: str | None = Field(default=None, description="The feature it is about, for a feature's alert.")


class ModelMonitorStatus(ResourceStatus):
    last_evaluation: datetime | None = Field(default=None, description="When the last evaluation ran.")
    last_success: datetime | None = Field(default=None, description="When every query last answered.")
    next_evaluation: datetime | None = Field(default=None, description="Not before this time (interval or backoff).")
    consecutive_failures: int = Field(default=0, ge=0, description="Evaluations in a row with a failed query.")
    queries: int | None = Field(default=None, description="Prometheus queries in the last evaluation.")
    summary: MonitorSummary | None = None
    performance: PerformanceStatus | None = None
    quality: QualityStatus | None = None
    features: list[FeatureResult] = Field(default_factory=list, description="Drift per feature, by name.")
    label_drift: LabelDriftStatus | None = None
    data_quality: DataQualityStatus | None = None
    degradation: DegradationStatus | None = None
    resources: ResourcesStatus | None = None
    alerts: list[AlertRecord] = Field(
        default_factory=list, max_length=20, description="Condition changes, newest last, at most 20."
    )
    firing_alerts: list[FiringAlert] = Field(
        default_factory=list,
        max_length=50,
        description="Alerts of this monitor firing in Prometheus at the last evaluation (its ALERTS series).",
    )
    notifications: list[DeliveryStatus] = Field(
        default_factory=list, max_length=8, description="How the latest news reached each channel."
    )
