"""What every ModelMonitor check returns: a condition's new value, and the helpers that word it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from modelpilot.api import ConditionStatus

from ..queries import QueryOutcome

__all__ = ["Verdict", "failed_verdict", "failure", "finite", "fmt"]


@dataclass(frozen=True)
class Verdict:
    """A condition's new value."""

    status: ConditionStatus
    reason: str
    message: str


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}{unit}"


def failure(outcomes: Iterable[QueryOutcome | None]) -> QueryOutcome | None:
    """The first failed query among ``outcomes``, if any."""
    return next((o for o in outcomes if o is not None and not o.ok), None)


def failed_verdict(outcome: QueryOutcome, last_good: datetime | None) -> Verdict:
    assert outcome.error is not None
    since = f"; last good result from {last_good.isoformat()}" if last_good else ""
    return Verdict("Unknown", "QueryFailed", f"{outcome.error.message}{since}")


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None where it is missing, NaN or infinite: status holds no such number."""
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)
