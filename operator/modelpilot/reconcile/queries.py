"""Prometheus answers as the decisions see them: samples, series, and one query's outcome.

The sources fill these in; a decision never sees the client that asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["MAX_COUNT", "PlannedQuery", "QueryFailed", "QueryOutcome", "Sample", "Series", "usable_count"]

#: Above any count a model server reaches; sums of such values would overflow.
MAX_COUNT = 1e15


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: (unix time, value) points in time order."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class QueryFailed(Exception):
    """A query that did not answer; ``reason`` is a CamelCase word for a condition."""

    def __init__(self, reason: str, message: str, query: str):
        self.reason = reason
        self.message = message
        self.query = query
        super().__init__(f"{reason}: {message}")


@dataclass(frozen=True)
class PlannedQuery:
    """A query to run: its name in the plan, its PromQL, and the evaluation time."""

    name: str
    promql: str
    at: datetime


@dataclass(frozen=True)
class QueryOutcome:
    """The answer of one query, or why there is none."""

    query: str
    samples: tuple[Sample, ...] = ()
    series: tuple[Series, ...] = ()
    error: QueryFailed | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def usable_count(value: float) -> bool:
    """A count an answer may hold: finite, not negative, at most MAX_COUNT."""
    return math.isfinite(value) and 0 <= value <= MAX_COUNT
