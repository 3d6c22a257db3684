"""What a RetrainPolicy tick reads (its monitor, the training Job, the MLflow run and versions,
its canary) and the actions it asks for, as plain values; and the names of the training contract."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelpilot.api.monitor import ModelMonitorStatus
from modelpilot.api.retrain import RetrainPolicySpec

from ..pod_policy import PodPolicy

__all__ = [
    "APPROVE_ANNOTATION",
    "GATE_DETAIL_TAG",
    "GATE_TAG",
    "PRODUCTION_TAG_PREFIX",
    "ROLLED_BACK_TAG",
    "SERVED_TAG",
    "TRIGGER_TAG",
    "CHALLENGER_ALIAS",
    "MANUAL_ANNOTATION",
    "MODEL_ARTIFACT",
    "ROLLBACK_ANNOTATION",
    "RUN_TAG",
    "CreateCanary",
    "CreateJob",
    "JobCondition",
    "JobView",
    "MonitorView",
    "RegisterCandidate",
    "RetrainAction",
    "RetrainObservations",
    "RunView",
    "TagVersion",
    "VersionView",
    "champion_alias",
    "job_view",
    "monitor_view",
]

MODEL_ARTIFACT = "model"
"""Where the training contract puts the model in its MLflow run."""
RUN_TAG = "modelpilot.dev/retrain-run"
"""The MLflow run tag the training Job sets (value: the Job's name): how its run is found."""
MANUAL_ANNOTATION = "modelpilot.dev/retrain-request"
APPROVE_ANNOTATION = "modelpilot.dev/approve-version"
ROLLBACK_ANNOTATION = "modelpilot.dev/rollback-request"

# Tags on registered versions: the trigger of the run, the gate's result, and what the version
# showed in production once it stopped serving (read by `modelpilot versions`).
TRIGGER_TAG = "modelpilot.dev/trigger"
GATE_TAG = "modelpilot.dev/gate"
GATE_DETAIL_TAG = "modelpilot.dev/gate-detail"
SERVED_TAG = "modelpilot.dev/served"
PRODUCTION_TAG_PREFIX = "modelpilot.dev/production-"
ROLLED_BACK_TAG = "modelpilot.dev/rolled-back"
CHALLENGER_ALIAS = "challenger"
"""The MLflow alias a registered candidate gets until its canary promotes it."""


def champion_alias(spec: RetrainPolicySpec) -> str:
    """The alias the gate compares with: the one the hand-off canary moves at promotion."""
    return str(spec.deployment.canary_template.get("alias") or "champion")


@dataclass(frozen=True)
class MonitorView:
    """What a policy reads of its ModelMonitor's status."""

    last_evaluation: datetime | None
    quality: Mapping[str, float | None] = field(default_factory=dict)
    version: str | None = None  # the served version the evaluation measured
    feature_psi: Mapping[str, float] = field(default_factory=dict)
    label_drift: bool | None = None


@dataclass(frozen=True)
class JobView:
    """A training Job as the policy sees it."""

    name: str
    state: Literal["Missing", "Active", "Succeeded", "Failed"]
    message: str = ""


@dataclass(frozen=True)
class RunView:
    """The MLflow run a training Job logged."""

    run_id: str
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class VersionView:
    """A registered model version and the metrics of the run it came from."""

    version: str
    run_id: str | None
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class RetrainObservations:
    """One tick's view of the policy's world; an error field says why a part could not be read."""

    monitor: MonitorView | None = None
    monitor_error: str | None = None
    manual_annotation: str | None = None
    approve_annotation: str | None = None
    rollback_annotation: str | None = None
    job: JobView | None = None
    run: RunView | None = None
    candidate: VersionView | None = None
    champion: VersionView | None = None
    canary_phase: str | None = None
    rollback_phase: str | None = None  # of status.production.rollbackCanary
    registry_error: str | None = None
    pod_policy: PodPolicy = field(default_factory=PodPolicy)  # the operator's configuration


@dataclass(frozen=True)
class CreateJob:
    """Create this training Job (already there: nothing to do)."""

    manifest: dict[str, Any]


@dataclass(frozen=True)
class RegisterCandidate:
    """Register this run as a version (once) and give it the challenger alias."""

    run_id: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class CreateCanary:
    """Create this CanaryRelease (already there: nothing to do)."""

    manifest: dict[str, Any]


@dataclass(frozen=True)
class TagVersion:
    """Set these tags on a registered version: the gate's result, and its quality in production
    once it stops serving (what `modelpilot versions` shows)."""

    version: str
    tags: Mapping[str, str]


RetrainAction = CreateJob | RegisterCandidate | CreateCanary | TagVersion


@dataclass(frozen=True)
class JobCondition:
    """One entry of a Job's status.conditions."""

    type: str
    status: str
    reason: str = ""
    message: str = ""


def job_view(name: str, conditions: list[JobCondition] | None, succeeded: int) -> JobView:
    """A Job's state from its status: None conditions means the Job does not exist."""
    if conditions is None:
        return JobView(name, "Missing")
    for condition in conditions:
        if condition.status == "True" and condition.type in ("Complete", "SuccessCriteriaMet"):
            return JobView(name, "Succeeded")
        if condition.status == "True" and condition.type in ("Failed", "FailureTarget"):
            return JobView(name, "Failed", f"{condition.reason}: {condition.message}")
    if succeeded:
        return JobView(name, "Succeeded")
    return JobView(name, "Active")


def monitor_view(status: ModelMonitorStatus) -> MonitorView:
    """What a policy reads of its ModelMonitor's status."""
    quality = status.quality
    label = status.label_drift.verdict if status.label_drift else None
    return MonitorView(
        last_evaluation=status.last_evaluation,
        version=status.summary.version if status.summary else None,
        quality={
            "accuracy": quality.accuracy if quality else None,
            "precision": quality.precision_macro if quality else None,
            "recall": quality.recall_macro if quality else None,
            "f1": quality.f1_macro if quality else None,
        },
        feature_psi={f.name: f.psi for f in status.features if f.psi is not None},
        label_drift=None if label is None else label == "Drift",
    )
