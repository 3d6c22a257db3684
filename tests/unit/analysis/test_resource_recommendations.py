"""Resource figures and KRR's rules, against order statistics worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelpilot.analysis.resources import MIN_CPU_CORES, MIN_MEMORY_BYTES, cpu_request, memory_request, summarise


def test_summary_is_now_average_and_peak_over_every_replica() -> None:
    a = (np.array([0.0, 60.0, 120.0]), np.array([1.0, 2.0, 3.0]))
    b = (np.array([60.0, 120.0]), np.array([5.0, 7.0]))
    summary = summarise([a, b])
    assert summary is not None
    assert (summary.current, summary.average, summary.peak) == (5.0, 18.0 / 5, 7.0)
    assert (summary.samples, summary.span_seconds) == (5, 120.0)
    assert summarise([a, b], current="max").current == 7.0  # type: ignore[union-attr]


def test_a_replica_gone_before_the_end_is_not_current_and_non_finite_points_are_left_out() -> None:
    gone = (np.array([0.0, 60.0]), np.array([100.0, 100.0]))
    live = (np.array([0.0, 60.0, 120.0]), np.array([1.0, math.nan, 3.0]))
    summary = summarise([gone, live])
    assert summary is not None and summary.current == 3.0 and summary.peak == 100.0 and summary.samples == 4
    assert summarise([]) is None and summarise([(np.array([1.0]), np.array([math.inf]))]) is None


def test_cpu_request_is_the_percentile_of_the_pooled_samples_with_a_floor() -> None:
    samples = np.arange(1, 101) / 100  # 0.01 .. 1.00
    # Linear interpolation between order statistics: rank 0.95 * 99 = 94.05 -> 0.95 + 0.05 * 0.01.
    request, level = cpu_request(samples, 0.95)
    assert level == pytest.approx(0.9505) and request == level
    assert cpu_request(np.full(10, 0.001), 0.95) == (MIN_CPU_CORES, pytest.approx(0.001))
    with pytest.raises(ValueError):
        cpu_request(np.array([math.nan]), 0.95)


def test_memory_is_the_peak_plus_the_margin_with_a_floor() -> None:
    gib = 2.0**30
    assert memory_request(np.array([0.5 * gib, gib, 0.7 * gib]), 0.15) == (pytest.approx(1.15 * gib), gib)
    assert memory_request(np.array([1.0]), 0.15)[0] == MIN_MEMORY_BYTES
