"""Trends in a metric's history: Mann-Kendall with Sen's slope for slow degradation, and
Page-Hinkley change points for abrupt concept drift."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["Direction", "Trend", "mann_kendall", "page_hinkley"]

Direction = Literal["increasing", "decreasing", "none", "insufficient"]


@dataclass(frozen=True)
class Trend:
    """A monotonic trend test over ``n`` points.

    ``direction`` is ``insufficient`` (every number NaN) below the minimum number of points,
    ``none`` when the trend is not significant. ``slope`` (Sen's) is per unit of the times;
    ``change`` is the fitted change from the first to the last time.
    """

    n: int
    direction: Direction
    tau: float
    pvalue: float
    slope: float
    intercept: float
    change: float


def mann_kendall(values: ArrayLike, times: ArrayLike | None = None, *, alpha: float = 0.05, min_points: int = 8) -> Trend:
    """Mann-Kendall trend test (Kendall's tau-b of the values against time) with Sen's slope.

    Points where the value or the time is NaN are dropped; ``times`` defaults to the positions.
    The p-value is scipy's ``kendalltau``: exact for short series without ties, else normal
    with the tie-corrected variance. Sen's slope is the median of pairwise slopes and its
    intercept the median of ``value - slope * time``. A constant series has tau 0 and p 1.
    """
    y = np.asarray(values, dtype=np.float64).ravel()
    t = np.arange(len(y), dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64).ravel()
    if t.shape != y.shape:
        raise ValueError(f"{len(t)} times for {len(y)} values")
    kept = ~(np.isnan(y) | np.isnan(t))
    y, t = y[kept], t[kept]
    if len(y) < max(min_points, 3):
        return Trend(len(y), "insufficient", math.nan, math.nan, math.nan, math.nan, math.nan)
    if np.ptp(t) == 0:
        raise ValueError("times must span more than one instant")

    # kendalltau is undefined (NaN) when every value ties; a flat series has no trend.
    tau, pvalue = (0.0, 1.0) if np.ptp(y) == 0 else stats.kendalltau(t, y)
    sen = stats.theilslopes(y, t, method="joint")
    direction: Direction = "none"
    if pvalue < alpha:
        direction = "increasing" if tau > 0 else "decreasing"
    return Trend(
        n=len(y),
        direction=direction,
        tau=float(tau),
        pvalue=float(pvalue),
        slope=float(sen.slope),
        intercept=float(sen.intercept),
        change=float(sen.slope * np.ptp(t)),
    )


def page_hinkley(
    values: ArrayLike,
    *,
    delta: float,
    threshold: float,
    direction: Literal["decrease", "increase", "both"] = "decrease",
) -> list[int]:
    """Indices at which the Page-Hinkley test detects a change in the mean.

    Each point updates the running mean of the current segment and the cumulative deviation
    from it, less the tolerance ``delta`` per point; an alarm fires when that sum has moved more
    than ``threshold`` from its extreme in the watched direction. The detector restarts at the
    point after an alarm, so one series can hold several changes. NaN points are skipped;
    indices refer to ``values``.
    """
    if delta < 0 or threshold <= 0:
        raise ValueError("delta must be non-negative and threshold positive")
    if direction not in ("decrease", "increase", "both"):
        raise ValueError(f"direction must be decrease, increase or both, got {direction!r}")
    watch_up = direction in ("increase", "both")
    watch_down = direction in ("decrease", "both")
    changes = []
    count, mean, up, lowest, down, highest = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    for i, value in enumerate(np.asarray(values, dtype=np.float64).ravel()):
        if math.isnan(value):
            continue
        count += 1
        mean += (value - mean) / count
        up += value - mean - delta
        down += value - mean + delta
        lowest, highest = min(lowest, up), max(highest, down)
        if (watch_up and up - lowest > threshold) or (watch_down and highest - down > threshold):
            changes.append(i)
            count, mean, up, lowest, down, highest = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    return changes
