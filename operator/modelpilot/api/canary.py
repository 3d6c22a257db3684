"""The CanaryRelease resource: a stepwise, analysed rollout of a candidate model version."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Literal, Mapping

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
    "DEFAULT_TOLERANCE",
    "AnalysisMetric",
    "AnalysisSpec",
    "CanaryAnalysisRecord",
    "CanaryPhase",
    "CanaryReleaseSpec",
    "CanaryReleaseStatus",
    "CandidateSpec",
    "CheckCounters",
    "CheckVerdict",
    "EnvVar",
    "HeaderMatch",
    "HookType",
    "PromotionProgress",
    "PromotionStage",
    "ReleaseRecord",
    "RollbackReason",
    "RouterSpec",
    "TargetSpec",
    "ThresholdRange",
    "Webhook",
]

CanaryPhase = Literal["Initializing", "Progressing", "AwaitingPromotion", "Promoting", "Promoted", "RolledBack"]
PromotionStage = Literal["ShiftTraffic", "MoveAlias", "RestartStable"]
CheckVerdict = Literal["Pass", "Fail", "NoData", "QueryError", "Inconclusive"]
HookType = Literal["confirm-rollout", "pre-rollout", "confirm-promotion", "post-rollout", "rollback", "event"]
Builtin = Literal["error-rate", "latency", "accuracy"]

#: Tolerance of each built-in metric against stable, when the metric sets none: an absolute
#: difference of proportions for error rate and accuracy, and P(candidate slower) - 0.5 for
#: latency (0.1: a random candidate request is slower than a stable one 60% of the time).
DEFAULT_TOLERANCE: Mapping[str, float] = MappingProxyType({"error-rate": 0.01, "latency": 0.1, "accuracy": 0.02})


class TargetSpec(ApiModel):
    """The stable serving Deployment and the Service in front of it (read, never owned)."""

    deployment: str = Field(min_length=1)
    service: str | None = Field(
        default=None, min_length=1, description="The stable Service; the backend gatewayAPI and istio routers weight."
    )
    version: str | None = Field(
        default=None,
        min_length=1,
        description="`version` label of the stable pods; when unset, the version spec.alias points to in MLflow "
        "when the release starts.",
    )


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
    header_match: HeaderMatch | None = Field(
        default=None, description="A/B routing: requests with this header go to the candidate (gatewayAPI, istio)."
    )
    max_candidate_replicas: int | None = Field(
        default=None,
        ge=1,
        description="replicas router: the most candidate replicas a step may use; default the stable's replica "
        "count, so a release at most doubles the serving capacity.",
    )

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
    """One check: a built-in metric or custom PromQL, with absolute and relative limits.

    Built-ins: `error-rate` (thresholds on the fraction of failed requests), `latency`
    (thresholds on p99 in seconds; the whole distribution compared with stable) and
    `accuracy` (thresholds on the share of labelled predictions that were right). A custom
    query (placeholders $model, $version, $namespace, $window, $selector) returns one number
    judged on thresholdRange; its stable value is reported beside it, but a bare number has no
    sample size, so it is not tested against stable.
    """

    name: str = Field(min_length=1, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    builtin: Builtin | None = None
    query: PromQLTemplate | None = None
    threshold_range: ThresholdRange | None = None
    tolerance: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="Largest acceptable worsening against stable (built-ins): a difference of proportions for "
        "error-rate (default 0.01) and accuracy (default 0.02), P(candidate slower) - 0.5 for latency (default 0.1).",
    )
    compare_to_stable: bool = Field(default=True, description="Test against stable over the same window (built-ins).")

    def effective_tolerance(self) -> float:
        if self.tolerance is not None:
            return self.tolerance
        return DEFAULT_TOLERANCE[self.builtin] if self.builtin else 0.0

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
        default_factory=lambda: [AnalysisMetric(name="error-rate", builtin="error-rate")], min_length=1, max_length=32
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)
    failure_limit: int = Field(default=1, ge=1, description="Failed checks in a release before rollback.")
    consecutive_query_error_limit: int = Field(
        default=0, ge=0, description="Checks in a row with a failed query before rollback; 0 holds forever."
    )
    no_data: Literal["fail", "hold", "ignore"] = Field(
        default="hold", description="A metric without data: fails the check, holds the step, or is left out."
    )
    min_samples: int = Field(default=50, ge=1, description="Requests (labels for accuracy) needed on each side.")
    inconclusive_limit: int = Field(
        default=3,
        ge=1,
        description="Inconclusive checks in a row within a step after which the next check decides on "
        "thresholds alone.",
    )


class Webhook(ApiModel):
    """An HTTP POST of a JSON body. confirm-rollout, pre-rollout and confirm-promotion gate their
    transition (non-2xx: wait and ask again every interval); rollback and post-rollout are
    delivered until one answers 2xx, without ever delaying the traffic switch; event receives
    every transition ({"text": ...}, as Slack accepts), once, best effort."""

    type: HookType
    url_secret: SecretKeyReference = Field(description="The Secret key holding the URL.")
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
                {
                    "rule": "!has(self.router) || self.router.type == 'replicas' || has(self.target.service)",
                    "message": "gatewayAPI and istio routers need target.service",
                    "fieldPath": ".target",
                },
                {
                    "rule": "has(self.target.version) || has(self.mlflow)",
                    "message": "set target.version or mlflow (to resolve the stable version from the alias)",
                    "fieldPath": ".target",
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
        if self.router.type != "replicas" and self.target.service is None:
            raise ValueError(f"target.service is required by the {self.router.type} router")
        if self.target.version is None and self.mlflow is None:
            raise ValueError("set target.version, or mlflow to resolve the stable version from the alias")
        return self

    def weights(self) -> list[int]:
        """The traffic weights of the steps, in order."""
        if self.step_weights is not None:
            return list(self.step_weights)
        assert self.step_weight is not None
        top = self.max_weight or 100
        return list(range(self.step_weight, top, self.step_weight)) + [top]

    def release_id(self) -> str:
        """What identifies a release: a hash of the candidate, so a changed candidate is a new release."""
        text = json.dumps(self.candidate.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def candidate_version(self) -> str:
        """The candidate pods' `version` label (their MODEL_VERSION): the registry version, or for an
        image-only candidate a label derived from the release."""
        return self.candidate.model_version or f"image-{self.release_id()[:8]}"


class CheckCounters(ApiModel):
    """Checks of the current release by outcome; the consecutive ones drive the limits."""

    checks: int = 0
    passed: int = 0
    failed: int = 0
    no_data: int = 0
    query_error: int = 0
    inconclusive: int = 0
    consecutive_query_error: int = 0
    consecutive_inconclusive: int = Field(default=0, description="In the current step.")


class CanaryAnalysisRecord(ApiModel):
    """The last judgement of one metric: candidate value, stable baseline, test and verdict."""

    metric: str
    time: datetime
    verdict: CheckVerdict
    value: float | None = None
    baseline: float | None = None
    samples: int | None = None
    baseline_samples: int | None = None
    pvalue: float | None = None
    effect: float | None = None
    threshold: float | None = Field(default=None, description="The limit crossed, or the tolerance.")
    message: str = ""


class RollbackReason(ApiModel):
    """Why a release was rolled back, in fields and in one line (``message``)."""

    reason: Literal["MetricFailed", "NoData", "QueryErrors", "Aborted"]
    step: int
    weight: int
    time: datetime
    metric: str | None = None
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    message: str


class PromotionProgress(ApiModel):
    """Where a promotion stands; every one-time effect is recorded here before it is made."""

    stage: PromotionStage
    started: datetime
    previous_alias_version: str | None = Field(default=None, description="Holder of the alias before the move.")
    alias_recorded: bool = Field(default=False, description="previousAliasVersion is known (it may be none).")
    alias_moved: bool = False
    restarted_at: str | None = Field(default=None, description="Value of the stable's restart annotation.")


class ReleaseRecord(ApiModel):
    version: str | None = None
    image: str | None = None
    outcome: Literal["Promoted", "RolledBack"]
    started: datetime | None = None
    time: datetime
    message: str = ""


class CanaryReleaseStatus(ApiModel):
    """Everything needed to resume a release lives here: a restarted operator continues from it."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: CanaryPhase | None = None
    release: str | None = Field(default=None, description="The release in flight: a hash of spec.candidate.")
    started: datetime | None = None
    stable_version: str | None = None
    candidate_version: str | None = None
    candidate_deployment: str | None = None
    canary_weight: int | None = Field(default=None, description="Traffic percent the current phase wants on the candidate.")
    actual_weight: float | None = Field(
        default=None, description="Traffic percent on the candidate as last observed (replica ratio or route weight)."
    )
    current_step: int | None = Field(default=None, description="1-based; 0 before the first step.")
    steps: int | None = None
    step_started: datetime | None = Field(default=None, description="When the candidate was ready at this step's weight.")
    next_check: datetime | None = Field(default=None, description="No check (or webhook retry) before this time.")
    last_check: CheckVerdict | None = Field(default=None, description="Outcome of the last check, its worst metric.")
    counters: CheckCounters = Field(default_factory=CheckCounters)
    last_analysis: list[CanaryAnalysisRecord] = Field(default_factory=list)
    rollback: RollbackReason | None = None
    promotion: PromotionProgress | None = None
    hooks_done: list[HookType] = Field(default_factory=list, description="Gates passed and hooks delivered.")
    history: list[ReleaseRecord] = Field(default_factory=list, max_length=20)
