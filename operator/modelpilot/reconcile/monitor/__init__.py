"""ModelMonitor decisions, one module per concern: performance, quality and its trend, drift,
alerts; ``decide`` puts them together."""

from .alerts import PROBLEMS
from .decide import CONDITION_TYPES, MonitorDecision, decide_monitor, is_due, owned_to_observe
from .observations import DeploymentState, MonitorObservations, query_plan
from .owned import HASH_ANNOTATION, PROMETHEUS_RULE, OwnedAction
from .rules import NO_RULE_DEFAULTS, RuleDefaults

__all__ = [
    "CONDITION_TYPES",
    "HASH_ANNOTATION",
    "NO_RULE_DEFAULTS",
    "PROMETHEUS_RULE",
    "OwnedAction",
    "RuleDefaults",
    "PROBLEMS",
    "DeploymentState",
    "MonitorDecision",
    "MonitorObservations",
    "decide_monitor",
    "is_due",
    "owned_to_observe",
    "query_plan",
]
