"""Which condition transitions are news, and how urgent: the notices a tick's conditions give.

A ModelMonitor's problems and their severities come from its alert table (``PROBLEMS``); the
lifecycle news of RetrainPolicies and CanaryReleases from ``LIFECYCLE`` below. A problem's end is
sent as ``resolved`` at the problem's severity; news (a release promoted) is sent once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from modelpilot.api import Condition, ConditionStatus
from modelpilot.api.notify import SEVERITIES, NotificationChannel, Severity

from ..canary.decide import LASTING
from ..decision import MESSAGE_LIMIT
from ..monitor.alerts import PROBLEMS

__all__ = ["LIFECYCLE", "Notice", "NoticeState", "Trigger", "for_channel", "notices", "severity_at_least", "triggers"]

#: firing: a problem began; resolved: it ended; news: something happened that needs no end.
NoticeState = Literal["firing", "resolved", "news"]


@dataclass(frozen=True)
class Trigger:
    """A condition status (and, when given, one of its reasons) that is worth a notice."""

    status: ConditionStatus
    severity: Severity
    reasons: frozenset[str] | None = None
    #: A problem, whose end is news too (resolved); False: news sent once.
    resolves: bool = True

    def matches(self, condition: Condition | None) -> bool:
        return (
            condition is not None
            and condition.status == self.status
            and (self.reasons is None or condition.reason in self.reasons)
        )


def _news(status: ConditionStatus, severity: Severity, *reasons: str) -> Trigger:
    return Trigger(status, severity, frozenset(reasons) or None, resolves=False)


def _problem(status: ConditionStatus, severity: Severity, *reasons: str) -> Trigger:
    return Trigger(status, severity, frozenset(reasons) or None)


#: RetrainPolicy and CanaryRelease: per condition type, its triggers, the first match counting.
LIFECYCLE: dict[str, dict[str, tuple[Trigger, ...]]] = {
    "RetrainPolicy": {
        "Training": (_news("True", "info", "JobRunning"),),  # a retrain started
        "CandidateReady": (_news("True", "info"),),  # a candidate passed the gate
        "AwaitingApproval": (_problem("True", "warning"),),  # someone must approve; resolved once done
        "Deploying": (_news("True", "info"),),  # the candidate's canary started
        "Ready": (_problem("False", "critical", "PodPolicyViolation"), _problem("False", "warning")),
    },
    "CanaryRelease": {
        "Progressing": (_news("True", "info", "Initializing"),),  # a release started
        "Promoted": (_news("True", "info"),),
        # An abort is a person's choice; any other rollback is the candidate failing its checks.
        "RolledBack": (_problem("True", "warning", "Aborted"), _problem("True", "critical")),
        "Paused": (_problem("True", "warning", "AwaitingApproval"), _news("True", "info", "WaitingForHook")),
        # Blocked by something that will not pass by itself; or analysis held (no data, query errors).
        "Ready": (_problem("False", "warning", *LASTING), _problem("Unknown", "warning", "AnalysisHeld")),
    },
}


def triggers(kind: str) -> Mapping[str, tuple[Trigger, ...]]:
    """The triggers of ``kind``'s condition types."""
    if kind == "ModelMonitor":
        return {type_: (_problem(bad, severity),) for type_, (bad, severity) in PROBLEMS.items()}
    return LIFECYCLE.get(kind, {})


@dataclass(frozen=True)
class Notice:
    """One piece of news about one condition of one resource."""

    kind: str
    namespace: str
    name: str
    condition: str
    status: ConditionStatus
    reason: str
    message: str
    severity: Severity
    state: NoticeState
    time: datetime

    @property
    def dedup_key(self) -> str:
        """The same for every notice of one condition of one resource (PagerDuty's dedup_key)."""
        return f"modelpilot/{self.kind}/{self.namespace}/{self.name}/{self.condition}"


def _first(candidates: Sequence[Trigger], condition: Condition | None) -> Trigger | None:
    return next((t for t in candidates if t.matches(condition)), None)


def notices(
    kind: str, namespace: str, name: str, before: Sequence[Condition], after: Sequence[Condition], now: datetime
) -> list[Notice]:
    """The notices of the change from ``before`` to ``after``: a condition that now matches a
    trigger it did not match before fires (or is news); one that matched a problem's trigger and
    now settles elsewhere (not Unknown: an outage ends nothing) resolves it."""
    old = {c.type: c for c in before}
    found: list[Notice] = []
    table = triggers(kind)
    for condition in after:
        candidates = table.get(condition.type, ())
        was, now_matches = _first(candidates, old.get(condition.type)), _first(candidates, condition)
        if now_matches is not None and now_matches != was:
            state: NoticeState = "firing" if now_matches.resolves else "news"
            severity = now_matches.severity
        elif now_matches is None and was is not None and was.resolves and condition.status != "Unknown":
            state, severity = "resolved", was.severity
        else:
            continue
        found.append(
            Notice(
                kind=kind,
                namespace=namespace,
                name=name,
                condition=condition.type,
                status=condition.status,
                reason=condition.reason,
                message=condition.message[:MESSAGE_LIMIT],
                severity=severity,
                state=state,
                time=now,
            )
        )
    return found


def severity_at_least(severity: Severity, least: Severity) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(least)


def for_channel(found: Sequence[Notice], channel: NotificationChannel) -> list[Notice]:
    """The notices ``channel`` subscribed to by its minimum severity."""
    return [n for n in found if severity_at_least(n.severity, channel.min_severity)]
