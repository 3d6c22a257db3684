"""The mSPRT of two proportions: its likelihood ratio against an independent numerical
integration, its false-positive rate under repeated looks (calibration), and its power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from modelpilot.analysis.sequential import always_valid_p, mixture_likelihood_ratio

ALPHA = 0.05


@pytest.mark.parametrize(("difference", "variance", "tau"), [(0.0, 1e-4, 0.03), (0.02, 1e-4, 0.03), (-0.05, 4e-4, 0.1)])
def test_the_ratio_is_the_normal_likelihood_mixed_over_the_prior(difference: float, variance: float, tau: float) -> None:
    sd = math.sqrt(variance)
    mixed, _ = integrate.quad(
        lambda theta: stats.norm.pdf(difference, theta, sd) * stats.norm.pdf(theta, 0, tau), -1, 1, points=[0, difference]
    )
    assert mixture_likelihood_ratio(difference, variance, tau) == pytest.approx(
        mixed / stats.norm.pdf(difference, 0, sd), rel=1e-6
    )


def looks(
    rng: np.random.Generator, p_a: float, p_b: float, sims: int, per_look: int, looks_: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative successes of each arm at each look, (sims, looks)."""
    a = rng.binomial(per_look, p_a, size=(sims, looks_)).cumsum(axis=1)
    b = rng.binomial(per_look, p_b, size=(sims, looks_)).cumsum(axis=1)
    return a, b


def rejected(a: np.ndarray, b: np.ndarray, per_look: int) -> np.ndarray:
    """Whether each simulated test ever reached p <= alpha, looking after every batch."""
    found = np.zeros(a.shape[0], dtype=bool)
    for sim in range(a.shape[0]):
        p = 1.0
        for look in range(a.shape[1]):
            n = per_look * (look + 1)
            result = always_valid_p(a[sim, look], n, b[sim, look], n, tau=0.03, previous_p=p)
            assert result is not None
            p = result.p_value
            if p <= ALPHA:
                found[sim] = True
                break
    return found


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.5, 0.9])
def test_looking_after_every_batch_keeps_the_false_positive_rate_at_alpha(rate: float) -> None:
    rng = np.random.default_rng(7)
    sims, per_look, count = 1000, 200, 50  # 50 looks, up to 10,000 per arm
    a, b = looks(rng, rate, rate, sims, per_look, count)
    rate_found = rejected(a, b, per_look).mean()
    assert rate_found <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / sims)
    # The harness can see inflation: a fixed-sample z-test read at every look finds far more.
    n = per_look * np.arange(1, count + 1)
    pooled = (a + b) / (2 * n)
    z = (b - a) / n / np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * 2 / n)
    naive = (np.abs(z) >= stats.norm.ppf(1 - ALPHA / 2)).any(axis=1).mean()
    assert naive > 2 * ALPHA


def test_a_real_difference_is_found_and_the_p_value_never_rises() -> None:
    rng = np.random.default_rng(11)
    a, b = looks(rng, 0.10, 0.13, 200, 200, 50)
    assert rejected(a, b, 200).mean() >= 0.9
    p, seen = 1.0, []
    for look in range(50):
        n = 200 * (look + 1)
        result = always_valid_p(a[0, look], n, b[0, look], n, tau=0.03, previous_p=p)
        assert result is not None
        seen.append(p := result.p_value)
    assert seen == sorted(seen, reverse=True)


def test_no_sample_is_no_answer_and_identical_arms_are_no_evidence() -> None:
    assert always_valid_p(0, 0, 5, 10, tau=0.03) is None
    same = always_valid_p(90, 100, 90, 100, tau=0.03)
    assert same is not None and same.difference == 0 and same.ratio < 1 and same.p_value == 1.0
