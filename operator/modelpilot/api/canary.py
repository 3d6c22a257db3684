"""The CanaryRelease resource: a stepwise, analysed rollout of a candidate model version."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .common import (
    ApiModel,
    Condition,
    Duration,
    LocalObjectReference,
    MlflowSettings,
    PrometheusEndpoint,
    PromQLTemplate,
    SecretKeyReference,
)

__all__ = [
    "AnalysisMetric",
    "AnalysisSpec",
    "CanaryAnalysisRecord",
    "CanaryReleaseSpec",
    "CanaryReleaseStatus",
    "CandidateSpec",
    "CheckCounters",
    "EnvVar",
    "HeaderMatch",
    "ReleaseRecord",
    "RollbackReason",
    "RouterSpec",
    "TargetSpec",
    "ThresholdRange",
    "Webhook",
]

CanaryPhase = Literal[
    "Pending", "Initializing", "Progressing", "AwaitingPromotion", "Promoting", "Promoted", "RollingBack", "RolledBack", "Failed"
]


class TargetSpec(ApiModel):
    """The stable serving Deployment and the Service in front of it (read, never owned)."""

    deployment: str = Field(min_length=1)
    service: str | None = Field(default=None, min_length=1)


class EnvVar(ApiModel):
    name: str = Field(min_length=1)
    value: str = ""


class CandidateSpec(ApiModel):
    """The candidate: a registry version and/or an image with env and args overrides."""

    model_version: str | None = Field(default=None, min_length=1, description="MLflow version of the candidate.")
    image: str | None = Field(default=None, min_length=1)
    env: list[EnvVar] = Field(default_factory=list)
    args: list[str] | None = None

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "has(self.modelVersion) || has(self.image)", "message": "set modelVersion or image"}
            ]
        }
    }

    @model_validator(mode="after")
    def _something_changes(self) -> CandidateSpec:
        if self.model_version is None and self.image is None:
            raise ValueError("candidate needs modelVersion or image")
        return self


class HeaderMatch(ApiModel):
    name: str = Field(min_length=1)
    value: str = Field(min_length=1)


class RouterSpec(ApiModel):
    """How traffic is split between stable and candidate."""

    type: Literal["replicas", "gatewayAPI", "istio"] = "replicas"
    http_route: LocalObjectReference | None = Field(default=None, description="gatewayAPI: the HTTPRoute to weight.")
    virtual_service: LocalObjectReference | None = Field(default=None, description="istio: the VirtualService.")
    header_match: HeaderMatch | None = Field(default=None, description="A/B routing by header (gatewayAPI, istio).")

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "self.type != 'gatewayAPI' || has(self.httpRoute)", "message": "gatewayAPI needs httpRoute"},
                {"rule": "self.type != 'istio' || has(self.virtualService)", "message": "istio needs virtualService"},
                {"rule": "self.type != 'replicas' || !has(self.headerMatch)", "message": "replicas cannot match headers"},
            ]
        }
    }

    @model_validator(mode="after")
    def _router_objects(self) -> RouterSpec:
        if self.type == "gatewayAPI" and self.http_route is None:
            raise ValueError("router.httpRoute is required for type gatewayAPI")
        if self.type == "istio" and self.virtual_service is None:
            raise ValueError("router.virtualService is required for type istio")
        if self.type == "replicas" and self.header_match is not None:
            raise ValueError("router.headerMatch needs a gatewayAPI or istio router")
        return self


class ThresholdRange(ApiModel):
    min: float | None = None
    max: float | None = None


class AnalysisMetric(ApiModel):
    """One check: a built-in metric or custom PromQL, with absolute and relative limits."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    builtin: Literal["error-rate", "latency", "accuracy"] | None = None
    query: PromQLTemplate | None = None
    threshold_range: ThresholdRange | None = None
    tolerance: float = Field(default=0.1, ge=0, description="Largest acceptable worsening against stable.")
    compare_to_stable: bool = True

    @model_validator(mode="after")
    def _builtin_or_query(self) -> AnalysisMetric:
        if (self.builtin is None) == (self.query is None):
            raise ValueError(f"metric {self.name!r}: set exactly one of builtin and query")
        return self

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "has(self.builtin) != has(self.query)", "message": "set exactly one of builtin and query"}
            ]
        }
    }


class AnalysisSpec(ApiModel):
    prometheus: PrometheusEndpoint
    window: Duration = "5m"
    metrics: list[AnalysisMetric] = Field(
        default_factory=lambda: [AnalysisMetric(name="error-rate", builtin="error-rate")], max_length=32
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)
    failure_limit: int = Field(default=1, ge=1, description="Failed checks before rollback.")
    consecutive_query_error_limit: int = Field(default=0, ge=0, description="0 holds forever on query errors.")
    no_data: Literal["fail", "hold", "ignore"] = "hold"
    min_samples: int = Field(default=50, ge=1)


class Webhook(ApiModel):
    type: Literal["confirm-rollout", "pre-rollout", "confirm-promotion", "post-rollout", "rollback", "event"]
    url_secret: SecretKeyReference
    timeout: Duration = "10s"


class CanaryReleaseSpec(ApiModel):
    """Move traffic from stable to a candidate in analysed steps."""

    model: str = Field(min_length=1, description="Registered model name (and `model` label).")
    target: TargetSpec
    candidate: CandidateSpec
    router: RouterSpec = Field(default_factory=RouterSpec)
    step_weights: list[Annotated[int, Field(ge=1, le=100)]] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Candidate traffic percent at each step, strictly ascending.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    step_weight: int | None = Field(default=None, ge=1, le=100)
    max_weight: int | None = Field(default=None, ge=1, le=100)
    interval: Duration = "1m"
    analysis: AnalysisSpec
    promotion: Literal["auto", "manual"] = "auto"
    promote: bool = Field(default=False, description="Approve a manual promotion.")
    abort: bool = Field(default=False, description="Roll back now.")
    mlflow: MlflowSettings | None = None
    alias: str = Field(default="champion", min_length=1, description="MLflow alias moved at promotion.")
    webhooks: list[Webhook] = Field(default_factory=list, max_length=16)

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.stepWeights) || self.stepWeights.isSorted()",
                    "message": "stepWeights must be ascending",
                    "fieldPath": ".stepWeights",
                },
                {
                    "rule": "has(self.stepWeights) != has(self.stepWeight)",
                    "message": "set exactly one of stepWeights and stepWeight",
                },
                {
                    "rule": "!has(self.maxWeight) || (has(self.stepWeight) && self.maxWeight >= self.stepWeight)",
                    "message": "maxWeight needs stepWeight and must not be below it",
                    "fieldPath": ".maxWeight",
                },
            ]
        }
    }

    @field_validator("step_weights")
    @classmethod
    def _ascending(cls, weights: list[int] | None) -> list[int] | None:
        if weights is not None and any(b <= a for a, b in zip(weights, weights[1:])):
            raise ValueError(f"stepWeights must be strictly ascending, got {weights}")
        return weights

    @model_validator(mode="after")
    def _steps(self) -> CanaryReleaseSpec:
        if (self.step_weights is None) == (self.step_weight is None):
            raise ValueError("set exactly one of stepWeights and stepWeight")
        if self.max_weight is not None and (self.step_weight is None or self.max_weight < self.step_weight):
            raise ValueError("maxWeight needs stepWeight and must not be below it")
        return self

    def weights(self) -> list[int]:
        """The traffic weights of the steps, in order."""
        if self.step_weights is not None:
            return list(self.step_weights)
        assert self.step_weight is not None
        top = self.max_weight or 100
        return list(range(self.step_weight, top, self.step_weight)) + [top]


class CheckCounters(ApiModel):
    failed: int = 0
    no_data: int = 0
    query_error: int = 0
    consecutive_query_error: int = 0
    inconclusive: int = 0


class CanaryAnalysisRecord(ApiModel):
    metric: str
    time: datetime
    verdict: Literal["Pass", "Fail", "NoData", "QueryError", "Inconclusive"]
    value: float | None = None
    baseline: float | None = None
    pvalue: float | None = None
    effect: float | None = None
    message: str = ""


class RollbackReason(ApiModel):
    metric: str
    step: int
    weight: int
    time: datetime
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    message: str


class ReleaseRecord(ApiModel):
    version: str | None = None
    image: str | None = None
    outcome: Literal["Promoted", "RolledBack", "Aborted", "Failed"]
    time: datetime
    message: str = ""


class CanaryReleaseStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: CanaryPhase | None = None
    canary_weight: int | None = None
    actual_weight: float | None = Field(default=None, description="Weight achieved, e.g. by replica ratio.")
    current_step: int | None = None
    step_started: datetime | None = None
    candidate_deployment: str | None = None
    counters: CheckCounters | None = None
    last_analysis: list[CanaryAnalysisRecord] = Field(default_factory=list)
    rollback: RollbackReason | None = None
    previous_alias_version: str | None = None
    history: list[ReleaseRecord] = Field(default_factory=list, max_length=20)
    state: dict[str, Any] = Field(default_factory=dict, description="Resume state of in-flight actions.")
