"""The API of modelpilot's custom resources: pydantic models of spec and status, the kinds, the CRDs.

This is the bottom layer: every other layer may import it, it imports none of them.
"""

from .canary import CanaryReleaseSpec, CanaryReleaseStatus
from .common import (
    ApiModel,
    Condition,
    ConditionStatus,
    Duration,
    ResourceStatus,
    format_duration,
    now_utc,
    parse_duration,
)
from .crd import build_crd, render_crds
from .kinds import (
    CANARY_RELEASE,
    CATEGORY,
    GROUP,
    KINDS,
    MODEL_MONITOR,
    RETRAIN_POLICY,
    VERSION,
    Kind,
    SpecError,
    load_spec,
    load_status,
)
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
    "ApiModel",
    "CanaryReleaseSpec",
    "CanaryReleaseStatus",
    "Condition",
    "ConditionStatus",
    "Duration",
    "Kind",
    "ModelMonitorSpec",
    "ModelMonitorStatus",
    "RetrainPolicySpec",
    "ResourceStatus",
    "RetrainPolicyStatus",
    "SpecError",
    "build_crd",
    "format_duration",
    "load_spec",
    "load_status",
    "now_utc",
    "parse_duration",
    "render_crds",
]
