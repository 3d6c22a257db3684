"""Mann-Kendall with Sen's slope and Page-Hinkley against computations written out here."""

import math
import statistics
from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from modelpilot.analysis import mann_kendall, page_hinkley


def mann_kendall_by_hand(values):
    """S, tau and the two-sided normal p-value of Mann-Kendall for a series without ties."""
    n = len(values)
    s = sum(np.sign(values[j] - values[i]) for i, j in combinations(range(n), 2))
    variance = n * (n - 1) * (2 * n + 5) / 18
    return s / (n * (n - 1) / 2), 2 * stats.norm.sf(abs(s) / math.sqrt(variance))


def test_tau_pvalue_and_sen_slope_match_their_definitions():
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0, 30, size=50))  # uneven sampling, in days
    values = 0.9 - 0.002 * times + rng.normal(0, 0.01, size=50)
    trend = mann_kendall(values, times)
    tau, pvalue = mann_kendall_by_hand(values)
    slope = statistics.median((values[j] - values[i]) / (times[j] - times[i]) for i, j in combinations(range(50), 2))
    assert trend.n == 50
    assert trend.tau == pytest.approx(tau)
    assert trend.pvalue == pytest.approx(pvalue, rel=1e-6)
    assert trend.slope == pytest.approx(slope)
    assert trend.intercept == pytest.approx(statistics.median(values - slope * times))
    assert trend.change == pytest.approx(slope * (times[-1] - times[0]))
    assert trend.direction == "decreasing"


def test_increasing_and_flat_series():
    rng = np.random.default_rng(2)
    assert mann_kendall(np.arange(20) * 0.01 + rng.normal(0, 0.02, size=20)).direction == "increasing"
    assert mann_kendall(rng.normal(0, 1, size=40)).direction == "none"


def test_nan_points_are_dropped():
    values = np.array([0.9, 0.89, np.nan, 0.87, 0.86, 0.86, 0.84, np.nan, 0.82, 0.81, 0.80])
    times = np.arange(11.0)
    kept = ~np.isnan(values)
    assert mann_kendall(values, times) == mann_kendall(values[kept], times[kept])
    assert mann_kendall(values, times).n == 9


def test_short_series_are_insufficient():
    trend = mann_kendall([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    assert trend.direction == "insufficient" and trend.n == 7 and math.isnan(trend.pvalue)
    assert mann_kendall([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]).direction == "decreasing"


def test_constant_series_has_no_trend():
    trend = mann_kendall(np.full(12, 0.93))
    assert (trend.tau, trend.pvalue, trend.slope, trend.intercept, trend.direction) == (0.0, 1.0, 0.0, 0.93, "none")


def test_times_must_move():
    with pytest.raises(ValueError):
        mann_kendall(np.arange(10.0), np.zeros(10))
    with pytest.raises(ValueError):
        mann_kendall(np.arange(10.0), np.arange(9.0))


def first_alarm_by_hand(values, delta, threshold):
    """The first index at which the cumulative deviation from the running mean rises more than
    ``threshold`` above its lowest point, computed with whole-array operations."""
    running_mean = np.cumsum(values) / np.arange(1, len(values) + 1)
    cumulative = np.cumsum(values - running_mean - delta)
    rise = cumulative - np.minimum.accumulate(np.minimum(cumulative, 0))
    alarms = np.flatnonzero(rise > threshold)
    return int(alarms[0]) if len(alarms) else None


def test_first_alarm_matches_the_definition():
    rng = np.random.default_rng(3)
    values = np.r_[rng.normal(0, 0.1, 80), rng.normal(0.3, 0.1, 40)]
    alarms = page_hinkley(values, delta=0.02, threshold=1.0, direction="increase")
    assert alarms[0] == first_alarm_by_hand(values, 0.02, 1.0)


def test_step_down_is_found_once_and_a_stationary_series_never():
    rng = np.random.default_rng(4)
    accuracy = np.r_[rng.normal(0.92, 0.01, 100), rng.normal(0.85, 0.01, 100)]
    alarms = page_hinkley(accuracy, delta=0.005, threshold=0.1)
    assert len(alarms) == 1 and 100 <= alarms[0] <= 110
    assert page_hinkley(accuracy, delta=0.005, threshold=0.1, direction="increase") == []
    assert page_hinkley(rng.normal(0.92, 0.01, 1000), delta=0.005, threshold=0.1, direction="both") == []


def test_detector_restarts_after_each_change():
    rng = np.random.default_rng(5)
    series = np.r_[rng.normal(0, 0.05, 60), rng.normal(1, 0.05, 60), rng.normal(0, 0.05, 60)]
    alarms = page_hinkley(series, delta=0.05, threshold=2.0, direction="both")
    assert len(alarms) == 2 and 60 <= alarms[0] <= 66 and 120 <= alarms[1] <= 126


def test_nan_points_are_skipped_and_indices_kept():
    rng = np.random.default_rng(6)
    series = np.r_[rng.normal(0.9, 0.01, 50), rng.normal(0.8, 0.01, 50)]
    alarms = page_hinkley(series, delta=0.005, threshold=0.1)
    holes = np.r_[np.full(3, np.nan), series[:25], np.full(7, np.nan), series[25:]]
    assert alarms and page_hinkley(holes, delta=0.005, threshold=0.1) == [i + 10 for i in alarms]


@pytest.mark.parametrize("arguments", [{"delta": -1, "threshold": 1}, {"delta": 0, "threshold": 0}])
def test_page_hinkley_settings_are_checked(arguments):
    with pytest.raises(ValueError):
        page_hinkley([1.0, 2.0], **arguments)
    with pytest.raises(ValueError):
        page_hinkley([1.0, 2.0], delta=0, threshold=1, direction="sideways")
