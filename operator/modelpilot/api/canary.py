"""The CanaryRelease resource: a stepwise, analysed rollout of a candidate model version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from types import MappingProxyType
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from .common import (
    ApiModel,
    Duration,
    LocalObjectReference,
    MlflowSettings,
    PrometheusEndpoint,
    PromQLTemplate,
    RegisteredModelName,
    ResourceStatus,
    Rule,
    SecretKeyReference,
    at_most,
)
from .notify import UNIQUE_CHANNEL_NAMES, DeliveryStatus, NotificationChannel

__all__ = [
    "ABArm",
    "ABTestSpec",
    "ABTestStatus",
    "ShadowSpec",
    "ShadowStatus",
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

CanaryPhase = Literal["Initializing", "Progressing", "AwaitingPromotion", "Promoting", "Promoted", "RolledBack", "Completed"]
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

    deployment: str = Field(min_length=1, description="Name of the stable Deployment.")
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
    """An environment variable of the candidate's model container."""

    name: str = Field(min_length=1, description="Name of the variable.")
    value: str = Field(default="", description="Its value.")


class CandidateSpec(ApiModel):
    """The candidate: a registry version and/or an image with env and args overrides."""

    model_version: str | None = Field(default=None, min_length=1, description="MLflow version of the candidate.")
    image: str | None = Field(default=None, min_length=1, description="Image of the candidate's model container.")
    env: list[EnvVar] = Field(default_factory=list, description="Environment variables set on the candidate's model container.")
    args: list[str] | None = Field(default=None, description="Arguments replacing the model container's args.")

    rules: ClassVar[tuple[Rule[CandidateSpec], ...]] = (
        Rule(
            "has(self.modelVersion) || has(self.image)",
            "set modelVersion or image",
            lambda candidate: candidate.model_version is not None or candidate.image is not None,
        ),
    )


class HeaderMatch(ApiModel):
    """An HTTP header that routes a request to the candidate."""

    name: str = Field(min_length=1, description="Header name.")
    value: str = Field(min_length=1, description="Exact header value.")


class RouterSpec(ApiModel):
    """How traffic is split between stable and candidate."""

    type: Literal["replicas", "gatewayAPI", "istio"] = Field(
        default="replicas",
        description="replicas (split by the ratio of candidate to stable pods behind one Service), gatewayAPI (an "
        "HTTPRoute's backend weights) or istio (a VirtualService's route weights). Default replicas.",
    )
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

    rules: ClassVar[tuple[Rule[RouterSpec], ...]] = (
        Rule(
            "self.type != 'gatewayAPI' || has(self.httpRoute)",
            "httpRoute is required by a gatewayAPI router",
            lambda router: router.type != "gatewayAPI" or router.http_route is not None,
            ".httpRoute",
        ),
        Rule(
            "self.type != 'istio' || has(self.virtualService)",
            "virtualService is required by an istio router",
            lambda router: router.type != "istio" or router.virtual_service is not None,
            ".virtualService",
        ),
        Rule(
            "self.type != 'replicas' || !has(self.headerMatch)",
            "headerMatch needs a gatewayAPI or istio router",
            lambda router: router.type != "replicas" or router.header_match is None,
            ".headerMatch",
        ),
    )


class ThresholdRange(ApiModel):
    """Absolute limits on a metric's value; the check fails outside them."""

    min: float | None = Field(default=None, description="Lowest acceptable value.")
    max: float | None = Field(default=None, description="Highest acceptable value.")


class AnalysisMetric(ApiModel):
    """One check: a built-in metric or custom PromQL, with absolute and relative limits.

    Built-ins: `error-rate` (thresholds on the fraction of failed requests), `latency`
    (thresholds on p99 in seconds; the whole distribution compared with stable) and
    `accuracy` (thresholds on the share of labelled predictions that were right). A custom
    query (placeholders $model, $version, $namespace, $window, $selector) returns one number
    judged on thresholdRange; its stable value is reported beside it, but a bare number has no
    sample size, so it is not tested against stable.
    """

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the check, in status and Events.",
    )
    builtin: Builtin | None = Field(default=None, description="error-rate, latency or accuracy.")
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

    rules: ClassVar[tuple[Rule[AnalysisMetric], ...]] = (
        Rule(
            "has(self.builtin) != has(self.query)",
            "set exactly one of builtin and query",
            lambda metric: (metric.builtin is None) != (metric.query is None),
        ),
    )


class AnalysisSpec(ApiModel):
    """How each step's candidate is judged."""

    prometheus: PrometheusEndpoint
    window: Duration = Field(default="5m", description="Window each check looks back over. Default 5m.")
    metrics: list[AnalysisMetric] = Field(
        default_factory=lambda: [AnalysisMetric(name="error-rate", builtin="error-rate")],
        min_length=1,
        max_length=32,
        description="The checks; all must pass. Default: error-rate alone.",
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the comparisons with stable. Default 0.05.")
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
        description="Inconclusive checks in a row within a step after which the next check decides on thresholds alone.",
    )


class Webhook(ApiModel):
    """An HTTP POST of a JSON body. confirm-rollout, pre-rollout and confirm-promotion gate their
    transition (non-2xx: wait and ask again every interval); rollback and post-rollout are
    delivered until one answers 2xx, without ever delaying the traffic switch; event receives
    every transition ({"text": ...}, as Slack accepts), once, best effort."""

    type: HookType = Field(description="confirm-rollout, pre-rollout, confirm-promotion, post-rollout, rollback or event.")
    url_secret: SecretKeyReference = Field(description="The Secret key holding the URL.")
    timeout: Annotated[Duration, AfterValidator(at_most("30s"))] = Field(
        default="10s", description="Timeout of each delivery; at most 30s."
    )


class ABTestSpec(ApiModel):
    """A fixed split for a while, and a winner declared on one proportion with a sequential test
    (mSPRT) whose false-positive rate holds however often it is read."""

    metric: str = Field(
        min_length=1, max_length=63, description="The spec.analysis.metrics entry judged: a built-in error-rate or accuracy."
    )
    split: int = Field(default=50, ge=1, le=99, description="Traffic percent on the candidate. Default 50.")
    duration: Duration = Field(default="7d", description="Without a winner by then, the stable stays. Default 7d.")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="The test's false-positive rate, at any look. Default 0.05.")
    mixing_sd: float = Field(
        default=0.03,
        gt=0,
        le=1,
        description="Spread of the differences the test looks for (its prior's standard deviation, on the proportion). "
        "Default 0.03.",
    )
    min_samples: int = Field(default=100, ge=1, description="Samples each side needs before a winner is declared.")


class ShadowSpec(ApiModel):
    """The candidate gets a mirrored copy of the stable's requests, and its answers go nowhere."""

    percent: int = Field(default=100, ge=1, le=100, description="Percent of requests mirrored to the candidate. Default 100.")
    duration: Duration = Field(default="10m", description="How long the candidate is judged in the shadow. Default 10m.")
    min_agreement: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="Least agreement of the candidate's predicted classes with the stable's on the same requests "
        "(1 - total variation distance of their class shares). Default 0.95.",
    )
    min_samples: int = Field(default=100, ge=1, description="Predictions each side needs before agreement is judged.")
    then: Literal["canary", "stop"] = Field(
        default="canary",
        description="After a passing shadow: canary (the steps of stepWeights, then promotion) or stop (the release "
        "ends Completed, nothing promoted).",
    )


class CanaryReleaseSpec(ApiModel):
    """Move traffic from stable to a candidate in analysed steps."""

    model: RegisteredModelName = Field(description="Registered model name in MLflow (and `model` label).")
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
    step_weight: int | None = Field(
        default=None, ge=1, le=100, description="Candidate traffic percent added at each step; instead of stepWeights."
    )
    max_weight: int | None = Field(
        default=None, ge=1, le=100, description="With stepWeight: the last step's percent. Default 100."
    )
    interval: Duration = Field(default="1m", description="Time between checks within a step. Default 1m.")
    analysis: AnalysisSpec
    promotion: Literal["auto", "manual"] = Field(
        default="auto", description="auto promotes after the last step; manual waits for spec.promote."
    )
    promote: bool = Field(default=False, description="Approve a manual promotion.")
    abort: bool = Field(default=False, description="Roll back now.")
    mlflow: MlflowSettings | None = None
    alias: str = Field(default="champion", min_length=1, description="MLflow alias moved at promotion.")
    webhooks: list[Webhook] = Field(default_factory=list, max_length=16, description="Gates and notifications.")
    mode: Literal["canary", "abTest", "shadow"] = Field(
        default="canary",
        description="canary: analysed steps, then promotion; abTest: a fixed split (spec.abTest) until the sequential "
        "test declares a winner (the candidate is promoted) or the stable wins or the time runs out (rolled back); "
        "shadow: mirrored traffic first (spec.shadow), then the canary steps or a stop.",
    )
    ab_test: ABTestSpec | None = Field(default=None, description="The A/B test of mode abTest.")
    shadow: ShadowSpec | None = Field(default=None, description="The shadow phase of mode shadow (gatewayAPI or istio).")

    notifications: list[NotificationChannel] = Field(
        default_factory=list, max_length=8, description="Channels this resource's news is sent to."
    )

    rules: ClassVar[tuple[Rule[CanaryReleaseSpec], ...]] = (
        UNIQUE_CHANNEL_NAMES,
        Rule(
            # isSorted allows equal neighbours; the list type `set` refuses them.
            "!has(self.stepWeights) || self.stepWeights.isSorted()",
            "stepWeights must be strictly ascending",
            lambda spec: spec.step_weights is None or all(a < b for a, b in pairwise(spec.step_weights)),
            ".stepWeights",
        ),
        Rule(
            "(has(self.mode) && self.mode == 'abTest') ? !has(self.stepWeights) && !has(self.stepWeight)"
            " : has(self.stepWeights) != has(self.stepWeight)",
            "set exactly one of stepWeights and stepWeight (an abTest takes neither: its split)",
            lambda spec: (
                (spec.step_weights is None and spec.step_weight is None)
                if spec.mode == "abTest"
                else (spec.step_weights is None) != (spec.step_weight is None)
            ),
        ),
        Rule(
            "(has(self.mode) && self.mode == 'abTest') == has(self.abTest)",
            "mode abTest needs abTest, and abTest needs mode abTest",
            lambda spec: (spec.mode == "abTest") == (spec.ab_test is not None),
            ".abTest",
        ),
        Rule(
            "(has(self.mode) && self.mode == 'shadow') == has(self.shadow)",
            "mode shadow needs shadow, and shadow needs mode shadow",
            lambda spec: (spec.mode == "shadow") == (spec.shadow is not None),
            ".shadow",
        ),
        Rule(
            "!has(self.shadow) || (has(self.router) && self.router.type != 'replicas')",
            "a shadow mirrors requests: it needs the gatewayAPI or istio router",
            lambda spec: spec.shadow is None or spec.router.type != "replicas",
            ".router.type",
        ),
        Rule(
            "!has(self.abTest) || self.analysis.metrics.exists(m, m.name == self.abTest.metric"
            " && has(m.builtin) && m.builtin != 'latency')",
            "abTest.metric must name an analysis metric with builtin error-rate or accuracy",
            lambda spec: (
                spec.ab_test is None
                or any(m.name == spec.ab_test.metric and m.builtin in ("error-rate", "accuracy") for m in spec.analysis.metrics)
            ),
            ".abTest.metric",
        ),
        Rule(
            "!has(self.maxWeight) || (has(self.stepWeight) && self.maxWeight >= self.stepWeight)",
            "maxWeight needs stepWeight and must not be below it",
            lambda spec: spec.max_weight is None or (spec.step_weight is not None and spec.max_weight >= spec.step_weight),
            ".maxWeight",
        ),
        Rule(
            "!has(self.router) || self.router.type == 'replicas' || has(self.target.service)",
            "target.service is required by gatewayAPI and istio routers",
            lambda spec: spec.router.type == "replicas" or spec.target.service is not None,
            ".target.service",
        ),
        Rule(
            "has(self.target.version) || has(self.mlflow)",
            "set target.version, or mlflow to resolve the stable version from the alias",
            lambda spec: spec.target.version is not None or spec.mlflow is not None,
            ".target.version",
        ),
    )

    def weights(self) -> list[int]:
        """The traffic weights of the steps, in order (an A/B test has one: its split)."""
        if self.ab_test is not None:
            return [self.ab_test.split]
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

    checks: int = Field(default=0, description="All checks.")
    passed: int = Field(default=0, description="Checks whose every metric passed.")
    failed: int = Field(default=0, description="Failed checks; analysis.failureLimit of them roll back.")
    no_data: int = Field(default=0, description="Checks with a metric without data.")
    query_error: int = Field(default=0, description="Checks with a failed query.")
    inconclusive: int = Field(default=0, description="Checks that could not tell candidate from stable.")
    consecutive_query_error: int = Field(
        default=0, description="Checks in a row with a failed query; see analysis.consecutiveQueryErrorLimit."
    )
    consecutive_inconclusive: int = Field(default=0, description="In the current step.")


class CanaryAnalysisRecord(ApiModel):
    """The last judgement of one metric: candidate value, stable baseline, test and verdict."""

    metric: str = Field(description="The check's name.")
    time: datetime = Field(description="When it was judged.")
    verdict: CheckVerdict = Field(description="Pass, Fail, NoData, QueryError or Inconclusive.")
    value: float | None = Field(default=None, description="The candidate's value (p99 seconds for latency).")
    baseline: float | None = Field(default=None, description="Stable's value over the same window.")
    samples: int | None = Field(default=None, description="Requests (labels for accuracy) on the candidate.")
    baseline_samples: int | None = Field(default=None, description="Requests (labels for accuracy) on stable.")
    pvalue: float | None = Field(default=None, description="p-value of the comparison with stable.")
    effect: float | None = Field(default=None, description="Estimated worsening against stable, on the tolerance's scale.")
    threshold: float | None = Field(default=None, description="The limit crossed, or the tolerance.")
    message: str = Field(default="", description="The judgement in one line.")


class RollbackReason(ApiModel):
    """Why a release was rolled back, in fields and in one line (``message``)."""

    reason: Literal["MetricFailed", "NoData", "QueryErrors", "Aborted", "ABTestLost", "ABTestInconclusive", "ShadowDisagreed"] = (
        Field(description="The cause.")
    )
    step: int = Field(description="The step rolled back from, 1-based.")
    weight: int = Field(description="Candidate traffic percent at that step.")
    time: datetime = Field(description="When the rollback was decided.")
    metric: str | None = Field(default=None, description="The check that failed.")
    value: float | None = Field(default=None, description="Its candidate value.")
    baseline: float | None = Field(default=None, description="Its stable value.")
    threshold: float | None = Field(default=None, description="The limit crossed, or the tolerance.")
    message: str = Field(description="The reason in one line.")


class PromotionProgress(ApiModel):
    """Where a promotion stands; every one-time effect is recorded here before it is made."""

    stage: PromotionStage = Field(description="ShiftTraffic, MoveAlias or RestartStable: the step in progress.")
    started: datetime = Field(description="When the promotion started.")
    previous_alias_version: str | None = Field(default=None, description="Holder of the alias before the move.")
    alias_recorded: bool = Field(default=False, description="previousAliasVersion is known (it may be none).")
    alias_moved: bool = Field(default=False, description="The MLflow alias points to the candidate.")
    restarted_at: str | None = Field(default=None, description="Value of the stable's restart annotation.")


class ReleaseRecord(ApiModel):
    """A finished release."""

    version: str | None = Field(default=None, description="The candidate's model version.")
    image: str | None = Field(default=None, description="The candidate's image, if it set one.")
    outcome: Literal["Promoted", "RolledBack", "Completed"] = Field(description="How it ended.")
    started: datetime | None = Field(default=None, description="When it started.")
    time: datetime = Field(description="When it ended.")
    message: str = Field(default="", description="Why, in one line.")


class ABArm(ApiModel):
    """One side of an A/B test, on all its data since the test started."""

    events: float = Field(description="Errors (error-rate) or right predictions (accuracy).")
    samples: float = Field(description="Requests or labelled predictions.")
    rate: float | None = Field(default=None, description="events / samples.")


class ABTestStatus(ApiModel):
    """Where an A/B test stands, and its evidence."""

    metric: str = Field(description="The metric judged.")
    stable: ABArm
    candidate: ABArm
    difference: float | None = Field(default=None, description="Candidate rate minus stable rate.")
    p_value: float = Field(default=1.0, description="Always-valid p-value: valid at every look, it never rises.")
    looks: int = Field(default=0, ge=0, description="Checks that read the test.")
    decision: Literal["Running", "CandidateWins", "StableWins", "Inconclusive"] = Field(
        default="Running", description="Running until the p-value reaches spec.abTest.alpha or the time runs out."
    )
    decided: datetime | None = Field(default=None, description="When the decision was made.")


class ShadowStatus(ApiModel):
    """Where the shadow phase stands: the candidate on mirrored requests."""

    started: datetime = Field(description="When the candidate began to get mirrored requests.")
    stable_predictions: float = Field(default=0, description="The stable's predictions over the shadow.")
    candidate_predictions: float = Field(default=0, description="The candidate's predictions over the shadow.")
    agreement: float | None = Field(
        default=None,
        description="1 - total variation distance of the two sides' class shares; disagreement is at least 1 - this.",
    )
    decision: Literal["Running", "Passed", "Failed"] = Field(default="Running", description="The shadow's outcome.")


class CanaryReleaseStatus(ResourceStatus):
    """Everything needed to resume a release lives here: a restarted operator continues from it."""

    phase: CanaryPhase | None = Field(
        default=None, description="Initializing, Progressing, AwaitingPromotion, Promoting, Promoted or RolledBack."
    )
    release: str | None = Field(default=None, description="The release in flight: a hash of spec.candidate.")
    started: datetime | None = Field(default=None, description="When the release started.")
    stable_version: str | None = Field(default=None, description="The stable pods' model version.")
    candidate_version: str | None = Field(default=None, description="The candidate pods' model version.")
    candidate_deployment: str | None = Field(default=None, description="The candidate Deployment the operator owns.")
    canary_weight: int | None = Field(default=None, description="Traffic percent the current phase wants on the candidate.")
    actual_weight: float | None = Field(
        default=None, description="Traffic percent on the candidate as last observed (replica ratio or route weight)."
    )
    current_step: int | None = Field(default=None, description="1-based; 0 before the first step.")
    steps: int | None = Field(default=None, description="Steps in the release.")
    step_started: datetime | None = Field(default=None, description="When the candidate was ready at this step's weight.")
    next_check: datetime | None = Field(default=None, description="No check (or webhook retry) before this time.")
    last_check: CheckVerdict | None = Field(default=None, description="Outcome of the last check, its worst metric.")
    counters: CheckCounters = Field(default_factory=CheckCounters)
    last_analysis: list[CanaryAnalysisRecord] = Field(default_factory=list, description="The last check, per metric.")
    rollback: RollbackReason | None = None
    ab_test: ABTestStatus | None = None
    shadow: ShadowStatus | None = None
    promotion: PromotionProgress | None = None
    hooks_done: list[HookType] = Field(default_factory=list, description="Gates passed and hooks delivered.")
    settled: bool = Field(
        default=False,
        description="The release is over and cleaned up (candidate at zero, hooks delivered, alias restored): "
        "no tick runs until the spec changes.",
    )
    history: list[ReleaseRecord] = Field(
        default_factory=list, max_length=20, description="Finished releases, newest last, at most 20."
    )
    notifications: list[DeliveryStatus] = Field(
        default_factory=list, max_length=8, description="How the latest news reached each channel."
    )
