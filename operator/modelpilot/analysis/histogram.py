"""Prometheus-style histograms as arrays: cumulative buckets to counts, and quantiles from them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["BucketCounts", "bucket_counts", "buckets_from_cumulative", "histogram_quantile"]


@dataclass(frozen=True)
class BucketCounts:
    """Non-cumulative counts per bucket; ``upper_bounds`` ascending, the last one +Inf."""

    upper_bounds: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> float:
        return float(self.counts.sum())


def buckets_from_cumulative(pairs: Iterable[tuple[float, float]]) -> BucketCounts:
    """Counts per bucket from (le, cumulative count) pairs in any order.

    A missing +Inf bucket is added with the largest cumulative count; a cumulative count that
    goes down (a series reset inside the window, or extrapolation noise) is clamped, so no
    bucket is negative.
    """
    by_bound: dict[float, float] = {}
    for bound, value in pairs:
        by_bound[float(bound)] = by_bound.get(float(bound), 0.0) + float(value)
    if not by_bound:
        return BucketCounts(np.array([math.inf]), np.array([0.0]))
    bounds = np.array(sorted(by_bound))
    cumulative = np.maximum.accumulate(np.array([by_bound[b] for b in bounds]))
    if not math.isinf(bounds[-1]):
        bounds = np.append(bounds, math.inf)
        cumulative = np.append(cumulative, cumulative[-1])
    counts = np.diff(cumulative, prepend=0.0)
    return BucketCounts(bounds, np.maximum(counts, 0.0))


def histogram_quantile(q: float, buckets: BucketCounts) -> float:
    """The q-quantile as Prometheus's histogram_quantile computes it (linear within a bucket).

    Returns NaN for an empty histogram; a quantile in the +Inf bucket is the largest finite
    bound, as in Prometheus.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must lie in [0, 1], got {q}")
    total = buckets.total
    if total <= 0:
        return math.nan
    cumulative = np.cumsum(buckets.counts)
    rank = q * total
    index = int(np.searchsorted(cumulative, rank, side="left"))
    index = min(index, len(cumulative) - 1)
    bounds = buckets.upper_bounds
    if math.isinf(bounds[index]):
        return float(bounds[-2]) if len(bounds) > 1 else math.nan
    lower = 0.0 if index == 0 else float(bounds[index - 1])
    if index == 0 and bounds[0] <= 0:
        return float(bounds[0])
    below = 0.0 if index == 0 else float(cumulative[index - 1])
    in_bucket = float(buckets.counts[index])
    if in_bucket <= 0:
        return float(bounds[index])
    return lower + (float(bounds[index]) - lower) * (rank - below) / in_bucket


def bucket_counts(values: np.ndarray, upper_bounds: np.ndarray) -> np.ndarray:
    """Counts per bucket as a Prometheus histogram counts them: a value lands in the first bucket
    whose upper bound is >= the value; the last entry is the +Inf bucket. NaN is not counted."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    index = np.searchsorted(np.asarray(upper_bounds, dtype=float), values, side="left")
    return np.bincount(index, minlength=len(upper_bounds) + 1).astype(float)
