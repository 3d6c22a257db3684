"""Histogram helpers against an independent computation on the raw samples."""

import math

import numpy as np
import pytest

from modelpilot.analysis.histogram import bucket_counts, buckets_from_cumulative, histogram_quantile

BOUNDS = np.array([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0])


def test_bucket_counts_match_le_semantics() -> None:
    values = np.array([0.01, 0.0100001, 0.3, 5.0, math.nan, -1.0])
    counts = bucket_counts(values, BOUNDS)
    finite = values[~np.isnan(values)]
    expected = [
        sum(1 for v in finite if (i == 0 or v > BOUNDS[i - 1]) and (i == len(BOUNDS) or v <= BOUNDS[i]))
        for i in range(len(BOUNDS) + 1)
    ]
    assert counts.tolist() == expected
    assert counts.sum() == 5


def test_cumulative_round_trip_and_missing_inf() -> None:
    rng = np.random.default_rng(3)
    counts = bucket_counts(rng.lognormal(-3, 1, 5000), BOUNDS)
    cumulative = np.cumsum(counts)
    pairs = [(b, c) for b, c in zip([*BOUNDS, math.inf], cumulative)]
    back = buckets_from_cumulative(reversed(pairs))
    assert back.counts.tolist() == counts.tolist()
    without_inf = buckets_from_cumulative(pairs[:-1])
    assert math.isinf(without_inf.upper_bounds[-1]) and without_inf.counts[-1] == 0


def test_decreasing_cumulative_is_clamped() -> None:
    buckets = buckets_from_cumulative([(0.1, 10.0), (0.2, 9.5), (math.inf, 12.0)])
    assert buckets.counts.tolist() == [10.0, 0.0, 2.0]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_quantile_is_within_the_true_bucket(q: float) -> None:
    rng = np.random.default_rng(11)
    sample = rng.lognormal(-3, 0.8, 20000)
    estimate = histogram_quantile(q, buckets_from_cumulative(zip([*BOUNDS, math.inf], np.cumsum(bucket_counts(sample, BOUNDS)))))
    true = float(np.quantile(sample, q))
    index = int(np.searchsorted(BOUNDS, true))
    lower = 0.0 if index == 0 else BOUNDS[index - 1]
    assert lower <= estimate <= BOUNDS[index]


def test_quantile_interpolates_linearly_like_prometheus() -> None:
    buckets = buckets_from_cumulative([(1.0, 10.0), (2.0, 30.0), (math.inf, 30.0)])
    # rank 15 of 30 lies 5/20 of the way into (1, 2].
    assert histogram_quantile(0.5, buckets) == pytest.approx(1.25)
    assert math.isnan(histogram_quantile(0.5, buckets_from_cumulative([])))
    overflow = buckets_from_cumulative([(1.0, 1.0), (math.inf, 100.0)])
    assert histogram_quantile(0.99, overflow) == 1.0
    with pytest.raises(ValueError):
        histogram_quantile(1.5, buckets)
