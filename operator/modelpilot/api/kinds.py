"""The three resource kinds: names, models, printer columns, and loading a spec from a body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .canary import CanaryReleaseSpec, CanaryReleaseStatus
from .common import RULE_ERROR, ApiModel, ResourceStatus
from .monitor import ModelMonitorSpec, ModelMonitorStatus
from .retrain import RetrainPolicySpec, RetrainPolicyStatus

__all__ = [
    "CANARY_RELEASE",
    "CATEGORY",
    "GROUP",
    "KINDS",
    "MODEL_MONITOR",
    "RETRAIN_POLICY",
    "VERSION",
    "Kind",
    "SpecError",
    "load_spec",
    "load_status",
]

GROUP = "modelpilot.dev"
VERSION = "v1alpha1"
CATEGORY = "modelpilot"

SpecT = TypeVar("SpecT", bound=ApiModel)
StatusT = TypeVar("StatusT", bound=ResourceStatus)


@dataclass(frozen=True)
class Kind(Generic[SpecT, StatusT]):
    """One custom resource kind and everything needed to serve and describe it."""

    kind: str
    plural: str
    short_name: str
    description: str
    spec: type[SpecT]
    status: type[StatusT]
    printer_columns: tuple[Mapping[str, str], ...]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _column(name: str, path: str, type_: str = "string", description: str = "", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if description:
        column["description"] = description
    if priority:
        column["priority"] = priority
    return column


_READY = _column("Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready condition")
_REASON = _column("Reason", '.status.conditions[?(@.type=="Ready")].reason', description="Why Ready is what it is", priority=1)
_AGE = _column("Age", ".metadata.creationTimestamp", "date")

MODEL_MONITOR: Kind[ModelMonitorSpec, ModelMonitorStatus] = Kind(
    kind="ModelMonitor",
    plural="modelmonitors",
    short_name="mm",
    description="Monitors a served model's health, quality and drift from Prometheus.",
    spec=ModelMonitorSpec,
    status=ModelMonitorStatus,
    printer_columns=(
        _column("Model", ".spec.model.name"),
        _column("Version", ".status.summary.version"),
        _READY,
        _column("Accuracy", ".status.summary.accuracyText", description="Accuracy over the quality window"),
        _column("P99", ".status.summary.latencyP99Text", description="Latency p99"),
        _column("QPS", ".status.summary.throughput", "number", priority=1),
        _column("Errors", ".status.summary.errorRateText", description="Share of requests that failed", priority=1),
        _column("Drifted", ".status.summary.drifted", description="Drifted features N/M"),
        _REASON,
        _AGE,
    ),
)

RETRAIN_POLICY: Kind[RetrainPolicySpec, RetrainPolicyStatus] = Kind(
    kind="RetrainPolicy",
    plural="retrainpolicies",
    short_name="rtp",
    description="Retrains a model on triggers, gates the candidate, and hands it to a canary.",
    spec=RetrainPolicySpec,
    status=RetrainPolicyStatus,
    printer_columns=(
        _column("Model", ".spec.model"),
        _READY,
        _column("Last Trigger", ".status.lastTrigger.type"),
        _column("Last Result", ".status.lastResult"),
        _column("Candidate", ".status.candidateVersion", priority=1),
        _REASON,
        _AGE,
    ),
)

CANARY_RELEASE: Kind[CanaryReleaseSpec, CanaryReleaseStatus] = Kind(
    kind="CanaryRelease",
    plural="canaryreleases",
    short_name="crel",
    description="Shifts traffic to a candidate model in analysed steps; promotes or rolls back.",
    spec=CanaryReleaseSpec,
    status=CanaryReleaseStatus,
    printer_columns=(
        _column("Model", ".spec.model"),
        _column("Candidate", ".status.candidateVersion"),
        _READY,
        _column("Phase", ".status.phase"),
        _column("Weight", ".status.canaryWeight", "integer", "Traffic percent on the candidate"),
        _column("Actual", ".status.actualWeight", "number", "Traffic percent achieved", priority=1),
        _column("Step", ".status.currentStep", "integer", priority=1),
        _REASON,
        _AGE,
    ),
)

KINDS: tuple[Kind[Any, Any], ...] = (MODEL_MONITOR, RETRAIN_POLICY, CANARY_RELEASE)


class SpecError(ValueError):
    """A spec that does not validate; ``field`` is the path a user would edit, e.g. ``spec.interval``."""

    def __init__(self, field: str, message: str, *, count: int = 1):
        self.field = field
        self.message = message
        self.count = count
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"{field}: {message}{more}")


def _field_path(root: str, error: ErrorDetails) -> str:
    loc = list(error["loc"])
    if error["type"] == RULE_ERROR and (rule_path := error.get("ctx", {}).get("field_path")):
        # pydantic places a model-level rule at the model; the rule knows the field to blame.
        loc += rule_path.lstrip(".").split(".")
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":  # pydantic's marker of a refused map key, which the part before names
            path += f".{_camel(part)}"
    return path


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _load(model: type[SpecT], body: Mapping[str, Any] | None, root: str) -> SpecT:
    try:
        return model.model_validate(dict(body or {}))
    except ValidationError as err:
        errors = err.errors(include_url=False)
        first = errors[0]
        message = first["msg"].removeprefix("Value error, ")
        raise SpecError(_field_path(root, first), message, count=len(errors)) from None


def load_spec(kind: Kind[SpecT, Any], spec: Mapping[str, Any] | None) -> SpecT:
    """Validate a resource's spec once, at the edge; raises ``SpecError`` naming the field."""
    return _load(kind.spec, spec, "spec")


def load_status(kind: Kind[Any, StatusT], status: Mapping[str, Any] | None) -> StatusT:
    """Read back a status this operator wrote; fields other writers added are ignored."""
    known = set(kind.status.model_fields) | {f.alias for f in kind.status.model_fields.values() if f.alias}
    return _load(kind.status, {k: v for k, v in dict(status or {}).items() if k in known}, "status")
