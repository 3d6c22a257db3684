"""Calibration: under no drift, and no canary difference, every p-value that feeds a verdict
alarms at its nominal rate; the effect gate stops shifts too small to matter and passes real
ones. Seeded, so deterministic, but each case is a real check: at alpha = 0.05, 1,000 trials put
the alarm rate within 3%-7% unless the test is off."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modelpilot.analysis import (
    assess_drift,
    compare_binned,
    compare_proportions,
    drift_from_counts,
    drift_from_samples,
)

ALPHA = 0.05
TRIALS = 1000
LOWEST, HIGHEST = 0.03, 0.07

# A latency-like histogram with a sparse tail and an empty bucket, so merging is exercised.
BUCKET_SHARES = np.array([0.002, 0.03, 0.2, 0.35, 0.25, 0.12, 0.04, 0.006, 0.0, 0.002])
UPPER_BOUNDS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, np.inf])
CATEGORY_SHARES = np.array([0.5, 0.25, 0.15, 0.07, 0.02, 0.007, 0.003])
CATEGORY_NAMES = np.array(["a", "b", "c", "d", "e", "f", "g"])
SMALL, LARGE = 200, 1_000_000
WORKERS = 2


def numerical_samples(rng, n):
    # KS is distribution-free for continuous data: uniforms stand for any feature, and float32
    # halves the cost of drawing two million of them per trial.
    return drift_from_samples(rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32), kind="numerical")


def discrete_samples(rng, n):
    return drift_from_samples(rng.poisson(1.5, n), rng.poisson(1.5, n), kind="numerical")


def categorical_samples(rng, n):
    if n < LARGE:
        draw = lambda: rng.choice(CATEGORY_NAMES, p=CATEGORY_SHARES, size=n)  # noqa: E731
    else:
        # A million strings per trial would time the test out, not the statistics. Counting
        # ignores order, so category codes laid out from multinomial counts are an iid sample.
        draw = lambda: np.repeat(np.arange(len(CATEGORY_SHARES)), rng.multinomial(n, CATEGORY_SHARES))  # noqa: E731
    return drift_from_samples(draw(), draw(), kind="categorical")


def bucket_counts(rng, n):
    reference, current = rng.multinomial(n, BUCKET_SHARES), rng.multinomial(n, BUCKET_SHARES)
    return drift_from_counts(reference, current, kind="numerical", upper_bounds=UPPER_BOUNDS)


def category_counts(rng, n):
    return drift_from_counts(rng.multinomial(n, CATEGORY_SHARES), rng.multinomial(n, CATEGORY_SHARES), kind="categorical")


# name: (draw, per-window size, trials). The exact KS test at 200 per window is discrete, with a
# true size of 3.96%; 4,000 cheap trials keep its estimate clear of the band's lower edge.
CASES = {
    "samples-numerical-200": (numerical_samples, SMALL, 4 * TRIALS),
    "samples-numerical-1e6": (numerical_samples, LARGE, TRIALS),
    "samples-discrete-200": (discrete_samples, SMALL, TRIALS),
    "samples-discrete-1e4": (discrete_samples, 10_000, TRIALS),
    "samples-categorical-200": (categorical_samples, SMALL, TRIALS),
    "samples-categorical-1e6": (categorical_samples, LARGE, TRIALS),
    "counts-numerical-200": (bucket_counts, SMALL, TRIALS),
    "counts-numerical-1e6": (bucket_counts, LARGE, TRIALS),
    "counts-categorical-200": (category_counts, SMALL, TRIALS),
    "counts-categorical-1e6": (category_counts, LARGE, TRIALS),
}


def in_threads(trial, count, seed):
    """``count`` results of ``trial(rng)``, split over two threads with their own seeded streams.

    numpy releases the GIL in sorting and array arithmetic, so the million-sample trials run
    about 1.4 times faster on two cores; the split is fixed, so the results are deterministic.
    """
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        batches = pool.map(lambda rng: [trial(rng) for _ in range(count // WORKERS)], streams)
        return [result for batch in batches for result in batch]


@pytest.fixture(scope="module", params=list(CASES))
def null_trials(request):
    """Drift results of pairs of windows drawn from one distribution."""
    draw, n, trials = CASES[request.param]
    return in_threads(lambda rng: draw(rng, n), trials, seed=list(CASES).index(request.param))


def test_no_drift_alarms_at_the_nominal_rate(null_trials):
    assert all(drift.outcome == "Ok" for drift in null_trials)
    rate = np.mean([drift.pvalue < ALPHA for drift in null_trials])
    assert LOWEST <= rate <= HIGHEST


def test_psi_averages_its_no_drift_expectation(null_trials):
    psi = np.mean([drift.psi for drift in null_trials])
    assert psi == pytest.approx(np.mean([drift.psi_expected for drift in null_trials]), rel=0.1)


def test_effect_gate_keeps_false_alarms_at_most_nominal(null_trials):
    rate = np.mean([assess_drift({"f": drift})["f"].drifted for drift in null_trials])
    assert rate <= HIGHEST


def flagged(shift, n, trials, seed):
    def trial(rng):
        reference = rng.standard_normal(n, dtype=np.float32)
        current = rng.standard_normal(n, dtype=np.float32) + np.float32(shift)
        return assess_drift({"f": drift_from_samples(reference, current, kind="numerical")})["f"].drifted

    return sum(in_threads(trial, trials, seed))


def test_a_shift_too_small_to_matter_is_not_flagged_at_a_million_samples():
    """KS sees a 0.01 sigma shift at this size; the PSI gate is what keeps it quiet."""
    rng = np.random.default_rng(99)
    drift = drift_from_samples(rng.standard_normal(LARGE), rng.standard_normal(LARGE) + 0.01, kind="numerical")
    assert drift.pvalue < ALPHA
    assert flagged(0.01, LARGE, trials=50, seed=100) == 0


@pytest.mark.parametrize("shift", [0.5, 1.0])
def test_moderate_and_strong_shifts_are_always_flagged(shift):
    assert flagged(shift, 5000, trials=100, seed=int(shift * 10)) == 100


@pytest.mark.parametrize("n", [500, LARGE])
def test_canary_latency_fails_at_the_nominal_rate_without_a_tolerance(n):
    rng = np.random.default_rng(n)
    results = [
        compare_binned(rng.multinomial(n, BUCKET_SHARES), rng.multinomial(n, BUCKET_SHARES), tolerance=0.0) for _ in range(TRIALS)
    ]
    assert LOWEST <= np.mean([r.verdict == "Fail" for r in results]) <= HIGHEST


def test_canary_latency_at_the_tolerance_fails_at_most_nominally():
    """The hardest acceptable candidate is exactly at the tolerance: P(slower) - 0.5 = 0.1."""
    slower = np.roll(BUCKET_SHARES, 1)
    # The probability of superiority is linear in the mixing weight of the slower histogram.
    wins = np.tril(np.outer(slower, BUCKET_SHARES), -1).sum() + (slower @ BUCKET_SHARES) / 2
    weight = 0.1 / (wins - 0.5)
    candidate = (1 - weight) * BUCKET_SHARES + weight * slower
    rng = np.random.default_rng(7)
    fails = [
        compare_binned(rng.multinomial(2000, BUCKET_SHARES), rng.multinomial(2000, candidate)).verdict == "Fail"
        for _ in range(TRIALS)
    ]
    assert np.mean(fails) <= HIGHEST


@pytest.mark.parametrize(("n", "rate"), [(2000, 0.05), (LARGE, 0.002)])
def test_canary_proportions_fail_at_the_nominal_rate_without_a_tolerance(n, rate):
    rng = np.random.default_rng(n)
    fails = [
        compare_proportions(rng.binomial(n, rate), n, rng.binomial(n, rate), n, tolerance=0.0).verdict == "Fail"
        for _ in range(TRIALS)
    ]
    assert LOWEST <= np.mean(fails) <= HIGHEST


def test_canary_proportions_at_the_tolerance_fail_at_most_nominally():
    """The candidate exactly at the margin is the hardest null case: the level holds there."""
    rng = np.random.default_rng(11)
    n, stable, margin = 2000, 0.05, 0.02
    fails = [
        compare_proportions(rng.binomial(n, stable), n, rng.binomial(n, stable + margin), n, tolerance=margin).verdict == "Fail"
        for _ in range(TRIALS)
    ]
    assert LOWEST <= np.mean(fails) <= HIGHEST
