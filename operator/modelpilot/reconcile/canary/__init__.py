"""CanaryRelease decisions: what a tick must read (needs), the phases, the plan of what must be
true in the cluster, the analysis of each check, and the objects a release owns."""

from .decide import CONDITION_TYPES, CanaryDecision, decide_canary
from .needs import is_due, observation_needs
from .objects import build_candidate_deployment, build_candidate_service
from .observations import (
    RESTART_ANNOTATION,
    AliasTarget,
    CanaryAction,
    CanaryNeeds,
    CanaryObservations,
    CanaryPlan,
    DeploymentView,
    HookAnswer,
    HookCall,
    MetricAnswer,
    MetricQueries,
    Notification,
    answers_by_type,
    controller_uid,
)
from .routes import (
    HTTPROUTE,
    VIRTUALSERVICE,
    RouteObject,
    candidate_name,
    candidate_replicas,
    weighted_http_route,
    weighted_virtual_service,
)

__all__ = [
    "CONDITION_TYPES",
    "HTTPROUTE",
    "RESTART_ANNOTATION",
    "VIRTUALSERVICE",
    "AliasTarget",
    "CanaryAction",
    "CanaryDecision",
    "CanaryNeeds",
    "CanaryObservations",
    "CanaryPlan",
    "DeploymentView",
    "HookAnswer",
    "HookCall",
    "MetricAnswer",
    "MetricQueries",
    "Notification",
    "RouteObject",
    "answers_by_type",
    "build_candidate_deployment",
    "build_candidate_service",
    "candidate_name",
    "candidate_replicas",
    "controller_uid",
    "decide_canary",
    "is_due",
    "observation_needs",
    "weighted_http_route",
    "weighted_virtual_service",
]
