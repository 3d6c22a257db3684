"""ModelMonitor decisions, one module per concern: performance, quality and its trend, drift,
alerts; ``decide`` puts them together."""

from .alerts import PROBLEMS
from .decide import CONDITION_TYPES, MonitorDecision, decide_monitor, is_due
from .observations import DeploymentState, MonitorObservations, query_plan

__all__ = [
    "CONDITION_TYPES",
    "PROBLEMS",
    "DeploymentState",
    "MonitorDecision",
    "MonitorObservations",
    "decide_monitor",
    "is_due",
    "query_plan",
]
