"""metav1.Condition bookkeeping: set a condition without losing when it last flipped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from modelpilot.api import Condition, ConditionStatus

from .decision import MESSAGE_LIMIT

__all__ = ["ConditionValue", "changed_conditions", "find_condition", "set_condition"]

#: What a decision says of one condition: (status, reason, message).
ConditionValue = tuple[ConditionStatus, str, str]


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
        message=message[:MESSAGE_LIMIT],
        last_transition_time=now if previous is None or flipped else previous.last_transition_time,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def changed_conditions(before: Sequence[Condition], after: Sequence[Condition]) -> list[Condition]:
    """Conditions of ``after`` whose status or reason differs from ``before``: what deserves an Event."""
    old = {c.type: (c.status, c.reason) for c in before}
    return [c for c in after if old.get(c.type) != (c.status, c.reason)]
