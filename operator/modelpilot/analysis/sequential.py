"""A sequential test of two proportions whose error rate holds however often it is looked at:
the mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh, "Always
Valid Inference" (2017), on the normal approximation of the difference of two proportions.

An A/B test is read at every check; a fixed-sample test read that often finds a "winner" far
more often than its alpha says. The mSPRT's likelihood ratio against "no difference", mixed over
a normal prior N(0, tau^2) on the difference, is a martingale under the null; by Ville's
inequality it crosses 1/alpha with probability at most alpha, at any time. The always-valid
p-value is the running minimum of 1/ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SequentialComparison", "always_valid_p", "mixture_likelihood_ratio"]


def mixture_likelihood_ratio(difference: float, variance: float, tau: float) -> float:
    """The mSPRT ratio for an observed ``difference`` with sampling ``variance``, mixed over
    N(0, tau^2): sqrt(V / (V + t^2)) * exp(d^2 t^2 / (2 V (V + t^2)))."""
    if variance <= 0:
        return 1.0  # nothing varies: no evidence either way
    t2 = tau * tau
    exponent = difference * difference * t2 / (2 * variance * (variance + t2))
    # The exponent can grow past what a float holds on a huge sample: the ratio is then "enormous".
    return math.sqrt(variance / (variance + t2)) * math.exp(min(exponent, 700.0))


@dataclass(frozen=True)
class SequentialComparison:
    """One look at two arms: their rates, the difference (b - a), and the always-valid p-value."""

    rate_a: float
    rate_b: float
    difference: float
    ratio: float
    p_value: float


def always_valid_p(
    events_a: float, n_a: float, events_b: float, n_b: float, *, tau: float, previous_p: float = 1.0
) -> SequentialComparison | None:
    """Compare arm b with arm a on all their data so far; None while either arm has no sample.
    ``previous_p`` is the p-value of the last look: the always-valid p-value never rises."""
    if n_a <= 0 or n_b <= 0:
        return None
    rate_a, rate_b = events_a / n_a, events_b / n_b
    # Each rate's variance, kept off zero so a run of all-successes still has a sampling spread.
    spread_a = max(rate_a * (1 - rate_a), 1.0 / n_a) / n_a
    spread_b = max(rate_b * (1 - rate_b), 1.0 / n_b) / n_b
    difference = rate_b - rate_a
    ratio = mixture_likelihood_ratio(difference, spread_a + spread_b, tau)
    return SequentialComparison(rate_a, rate_b, difference, ratio, min(previous_p, 1.0, 1.0 / ratio))
