"""metav1.Condition bookkeeping: set a condition without losing when it last flipped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Literal, Sequence

from modelpilot.api import Condition, ConditionStatus

__all__ = ["EventToPost", "changed_conditions", "find_condition", "set_condition"]


@dataclass(frozen=True)
class EventToPost:
    """A Kubernetes Event a reconcile step asks the handler to post."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def find_condition(conditions: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """The list with ``type_`` set; lastTransitionTime moves only when the status flips."""
    previous = find_condition(conditions, type_)
    flipped = previous is None or previous.status != status
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now if flipped else previous.last_transition_time,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def changed_conditions(before: Sequence[Condition], after: Sequence[Condition]) -> list[Condition]:
    """Conditions of ``after`` whose status or reason differs from ``before``: what deserves an Event."""
    old = {c.type: (c.status, c.reason) for c in before}
    return [c for c in after if old.get(c.type) != (c.status, c.reason)]
