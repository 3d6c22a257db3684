"""Canary comparisons against scipy on expanded samples and against written-out formulas."""

import math

import numpy as np
import pytest
from scipy import optimize, stats

from modelpilot.analysis import compare_binned, compare_proportions

LATENCY = np.array([0.05, 0.25, 0.35, 0.2, 0.1, 0.04, 0.01])


def expand(counts):
    return np.repeat(np.arange(len(counts)), np.asarray(counts, dtype=int))


def superiority(stable, candidate):
    """P(candidate > stable) + P(tie) / 2 over all pairs of binned observations."""
    wins = sum(c * s for i, c in enumerate(candidate) for j, s in enumerate(stable) if i > j)
    ties = sum(c * s for c, s in zip(candidate, stable))
    return (wins + ties / 2) / (sum(stable) * sum(candidate))


@pytest.mark.parametrize("size", [300, 40_000])
def test_binned_mann_whitney_equals_scipy_on_expanded_samples(size):
    rng = np.random.default_rng(size)
    stable = rng.multinomial(size, LATENCY)
    candidate = rng.multinomial(size + 77, np.roll(LATENCY, 1) * 0.3 + LATENCY * 0.7)
    result = compare_binned(stable, candidate)
    expected = stats.mannwhitneyu(expand(candidate), expand(stable), alternative="greater", method="asymptotic")
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert result.effect == pytest.approx(superiority(stable, candidate) - 0.5)
    assert (result.n_stable, result.n_candidate) == (size, size + 77)


def test_a_clearly_slower_candidate_fails():
    stable = np.array([100, 400, 300, 150, 50, 0, 0])
    candidate = np.array([0, 50, 150, 300, 400, 100, 0])
    result = compare_binned(stable, candidate)
    assert result.verdict == "Fail" and result.effect > 0.1 and result.pvalue < 1e-10


def test_an_equal_or_faster_candidate_passes():
    stable = np.array([1000, 4000, 3000, 1500, 500, 0, 0])
    assert compare_binned(stable, stable).verdict == "Pass"
    assert compare_binned(stable, np.roll(stable, -1)).verdict == "Pass"


def test_significant_but_tolerable_slowdown_passes():
    """At huge n a tiny worsening is significant, yet within the tolerance it is no failure."""
    stable = np.array([10_000, 40_000, 30_000, 15_000, 5_000, 0])
    candidate = np.array([9_000, 39_000, 31_000, 16_000, 5_000, 0])
    result = compare_binned(stable, candidate)
    assert result.pvalue < 0.05 and 0 < result.effect < 0.1
    assert result.verdict == "Pass"


def test_small_slowdown_with_little_data_is_inconclusive():
    stable = np.array([10, 40, 30, 15, 5])
    candidate = np.array([5, 35, 35, 18, 7])
    assert compare_binned(stable, candidate).verdict == "Inconclusive"


def test_everything_in_one_bucket_is_no_difference():
    result = compare_binned([0, 500, 0], [0, 300, 0])
    assert (result.pvalue, result.effect, result.verdict) == (1.0, 0.0, "Pass")


def test_binned_without_enough_data():
    assert compare_binned([0, 0, 0], [10, 20, 5]).verdict == "NoData"
    few = compare_binned([10, 20, 5], [1, 2, 3], min_samples=50)
    assert few.verdict == "Inconclusive" and math.isnan(few.pvalue) and few.n_candidate == 6


def test_binned_inputs_are_checked():
    with pytest.raises(ValueError):
        compare_binned([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        compare_binned([1, 2, 3], [1, 2, 3], tolerance=-0.1)
    with pytest.raises(ValueError):
        compare_binned([1, 2, 3], [1, 2, 3], alpha=1.0)


def pooled_z(stable_events, stable_total, candidate_events, candidate_total):
    pooled = (stable_events + candidate_events) / (stable_total + candidate_total)
    se = math.sqrt(pooled * (1 - pooled) * (1 / stable_total + 1 / candidate_total))
    return (candidate_events / candidate_total - stable_events / stable_total) / se


def test_zero_tolerance_is_the_pooled_z_test():
    result = compare_proportions(40, 2000, 62, 1800, tolerance=0.0)
    z = pooled_z(40, 2000, 62, 1800)
    assert result.statistic == pytest.approx(z)
    assert result.pvalue == pytest.approx(stats.norm.sf(z))
    assert result.effect == pytest.approx(62 / 1800 - 40 / 2000)


def test_score_test_uses_the_restricted_maximum_likelihood():
    stable_events, stable_total, candidate_events, candidate_total, margin = 30, 1500, 70, 1400, 0.01

    def negative_log_likelihood(candidate_rate):
        stable_rate = candidate_rate - margin
        return -(
            stats.binom.logpmf(candidate_events, candidate_total, candidate_rate)
            + stats.binom.logpmf(stable_events, stable_total, stable_rate)
        )

    worse = optimize.minimize_scalar(negative_log_likelihood, bounds=(margin, 1), method="bounded").x
    better = worse - margin
    se = math.sqrt(worse * (1 - worse) / candidate_total + better * (1 - better) / stable_total)
    z = (candidate_events / candidate_total - stable_events / stable_total - margin) / se
    result = compare_proportions(stable_events, stable_total, candidate_events, candidate_total, tolerance=margin)
    assert result.statistic == pytest.approx(z, rel=1e-5)
    assert result.verdict == "Fail"


def test_accuracy_is_judged_on_its_errors():
    """Lower accuracy is worse: the same counts read as errors give the mirrored judgement."""
    accuracy = compare_proportions(1800, 2000, 1700, 2000, tolerance=0.02, higher_is_worse=False)
    errors = compare_proportions(200, 2000, 300, 2000, tolerance=0.02)
    assert (accuracy.statistic, accuracy.effect, accuracy.verdict) == (errors.statistic, errors.effect, "Fail")
    assert accuracy.effect == pytest.approx(0.05)


def test_proportion_verdicts():
    assert compare_proportions(20, 10_000, 21, 10_000, tolerance=0.005).verdict == "Pass"
    assert compare_proportions(20, 1000, 25, 1000, tolerance=0.005).verdict == "Inconclusive"
    assert compare_proportions(0, 5000, 0, 5000, tolerance=0.001).verdict == "Pass"
    no_errors = compare_proportions(0, 5000, 0, 5000, tolerance=0.0)
    assert (no_errors.statistic, no_errors.verdict) == (0.0, "Inconclusive")
    assert compare_proportions(5, 1000, 0, 0, tolerance=0.01).verdict == "NoData"
    assert compare_proportions(5, 1000, 0, 20, tolerance=0.01).verdict == "Inconclusive"


@pytest.mark.parametrize(
    ("arguments", "tolerance"),
    [((5, 4, 1, 10), 0.01), ((1, 10, -1, 10), 0.01), ((1, 10, 1, 10), -0.01), ((1, 10, 1, 10), 1.0)],
)
def test_proportion_inputs_are_checked(arguments, tolerance):
    with pytest.raises(ValueError):
        compare_proportions(*arguments, tolerance=tolerance)
