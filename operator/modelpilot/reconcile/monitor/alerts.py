"""Alerts of a ModelMonitor: which condition status is a problem and how loud, the bounded
alert history, and the Events of condition transitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from modelpilot.api import Condition, ConditionStatus
from modelpilot.api.monitor import AlertRecord

from ..conditions import changed_conditions
from ..decision import EventToPost, newest

__all__ = ["PROBLEMS", "alert_history", "transition_events"]

# The status that means "something is wrong" for each condition, and how loud it is.
PROBLEMS: dict[str, tuple[ConditionStatus, Literal["info", "warning", "critical"]]] = {
    "Healthy": ("False", "critical"),
    "PerformanceDegraded": ("True", "critical"),
    "ErrorRateHigh": ("True", "critical"),
    "LatencyHigh": ("True", "warning"),
    "DataDrift": ("True", "warning"),
    "LabelDrift": ("True", "warning"),
    "ConceptDrift": ("True", "warning"),
}


def alert_history(
    before: Sequence[Condition], after: Sequence[Condition], history: Sequence[AlertRecord], now: datetime
) -> list[AlertRecord]:
    old = {c.type: c.status for c in before}
    records: list[AlertRecord] = []
    for condition in after:
        if condition.type not in PROBLEMS or old.get(condition.type) == condition.status:
            continue
        bad, severity = PROBLEMS[condition.type]
        if condition.status == bad:
            records.append(
                AlertRecord(time=now, type=condition.type, severity=severity, state="active", message=condition.message)
            )
        elif condition.status != "Unknown" and old.get(condition.type) == bad:
            records.append(
                AlertRecord(time=now, type=condition.type, severity=severity, state="resolved", message=condition.message)
            )
    return newest(history, *records)


def transition_events(before: Sequence[Condition], after: Sequence[Condition]) -> list[EventToPost]:
    events = []
    for condition in changed_conditions(before, after):
        bad = PROBLEMS.get(condition.type, ("False", "info"))[0]
        problem = condition.status == bad or (condition.type == "Ready" and condition.status != "True")
        events.append(
            EventToPost(
                type="Warning" if problem else "Normal",
                reason=f"{condition.type}{'' if condition.status == 'True' else condition.status}",
                message=f"{condition.reason}: {condition.message}",
            )
        )
    return events
