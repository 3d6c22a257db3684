"""Alerts of a ModelMonitor: which condition status is a problem and how loud, the bounded
alert history, and the Events of condition transitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from modelpilot.api import Condition, ConditionStatus
from modelpilot.api.monitor import AlertName, AlertRecord
from modelpilot.api.notify import Severity

from ..conditions import changed_conditions
from ..decision import EventToPost, newest

__all__ = ["ALERTS", "PROBLEMS", "AlertKind", "alert_history", "transition_events"]


@dataclass(frozen=True)
class AlertKind:
    """One row of the alert table: what an alert watches, how loud it is and its defaults."""

    severity: Severity
    hold: str
    threshold: float | None
    summary: str
    description: str
    #: The condition that says the same thing in status, and its problem status.
    condition: tuple[str, ConditionStatus] | None = None


# The one table of alerts: the generated rules, the status.alerts history and the Events all take
# their severities from here (README, "Alerts"). Thresholds are the monitoring guide's defaults;
# a spec's own limit comes first.
ALERTS: dict[AlertName, AlertKind] = {
    "ModelUnhealthy": AlertKind(
        "critical",
        "5m",
        None,
        "Serving replicas unavailable",
        "Fewer ready replicas than wanted for {hold}.",
        ("Healthy", "False"),
    ),
    "ModelAccuracyLow": AlertKind(
        "critical",
        "5m",
        0.95,
        "Accuracy low",
        "Accuracy below {threshold} for {hold}, with enough labelled predictions.",
        ("PerformanceDegraded", "True"),
    ),
    "ModelErrorRateHigh": AlertKind(
        "critical",
        "5m",
        0.01,
        "Error rate high",
        "More than {threshold} of requests failed for {hold}.",
        ("ErrorRateHigh", "True"),
    ),
    "ModelLatencyHigh": AlertKind(
        "warning", "5m", 0.1, "Latency high", "p99 latency above {threshold} s for {hold}.", ("LatencyHigh", "True")
    ),
    "ModelTrafficAbsent": AlertKind("warning", "10m", 0.0, "No traffic", "No requests reached the model for {hold}."),
    "ModelFeatureDrift": AlertKind(
        "warning",
        "1m",
        0.25,
        "Feature drift",
        "The PSI of feature {{{{ $labels.feature }}}} is above {threshold} for {hold}.",
        ("DataDrift", "True"),
    ),
    "ModelLabelDrift": AlertKind(
        "warning",
        "5m",
        None,
        "Prediction drift",
        "The predicted classes' distribution drifted (for {hold}).",
        ("LabelDrift", "True"),
    ),
    "ModelConceptDrift": AlertKind(
        "warning",
        "5m",
        None,
        "Concept drift",
        "Quality is trending down or shifted down (for {hold}).",
        ("ConceptDrift", "True"),
    ),
    "ModelMonitorStale": AlertKind(
        "warning", "5m", None, "Monitor not evaluated", "No evaluation for three intervals: is the operator running?"
    ),
    "ModelMonitorFailing": AlertKind(
        "warning", "15m", None, "Monitor failing", "Evaluations keep failing (for {hold}); Ready says why."
    ),
    "ModelResourcePressure": AlertKind(
        "warning",
        "10m",
        None,
        "Serving pods under resource pressure",
        "CPU throttling, memory near its limit, OOM kills or GPU errors (for {hold}); ResourcePressure says which.",
        ("ResourcePressure", "True"),
    ),
    "ModelOverprovisioned": AlertKind(
        "info",
        "1h",
        None,
        "Serving pods overprovisioned",
        "Requests far above use, or GPUs under-used (for {hold}); status.resources holds the patch.",
        ("Overprovisioned", "True"),
    ),
    "ModelDataQuality": AlertKind(
        "warning",
        "5m",
        None,
        "Feature data quality",
        "Missing values, values outside the baseline's range or unseen categories above their limits (for {hold}); "
        "DataQuality says which feature.",
        ("DataQuality", "True"),
    ),
}

# The status that means "something is wrong" for each condition, and how loud it is.
PROBLEMS: dict[str, tuple[ConditionStatus, Severity]] = {
    kind.condition[0]: (kind.condition[1], kind.severity) for kind in ALERTS.values() if kind.condition is not None
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
