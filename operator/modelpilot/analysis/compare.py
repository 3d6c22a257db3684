"""Canary judgement of one metric: is the candidate worse than the stable model over the same
window, by more than a tolerance? Mann-Whitney U for binned values such as latency, a score test
for proportions such as error rate and accuracy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from modelpilot.analysis._bins import counts_vector

__all__ = ["Comparison", "Verdict", "compare_binned", "compare_proportions"]

Verdict = Literal["Pass", "Fail", "Inconclusive", "NoData"]


@dataclass(frozen=True)
class Comparison:
    """Candidate against stable on one metric.

    ``effect`` is signed so that positive means the candidate is worse. ``Fail``: worse by more
    than the tolerance, at confidence ``1 - alpha``; ``Pass``: not worse by more than the
    tolerance, at the same confidence (a candidate exactly at the tolerance passes or is
    inconclusive, and fails at most ``alpha`` of the time);
    ``Inconclusive``: neither, or fewer than ``min_samples`` on a side; ``NoData``: a side saw
    nothing in the window. Without a test (too few samples, no data) the statistics are NaN.
    """

    verdict: Verdict
    statistic: float
    pvalue: float
    effect: float
    n_stable: int
    n_candidate: int
    detail: str


def compare_binned(
    stable_counts: ArrayLike,
    candidate_counts: ArrayLike,
    *,
    tolerance: float = 0.1,
    alpha: float = 0.05,
    min_samples: int = 50,
) -> Comparison:
    """One-sided Mann-Whitney U test that the candidate's values are larger than the stable's.

    Counts per ordered bin (non-cumulative histogram buckets, same buckets on both sides) are
    ranked directly: every observation in a bin shares the bin's mid-rank, with the tie
    correction of the variance, so ``statistic`` (the candidate's U) and ``pvalue`` equal
    scipy's ``mannwhitneyu(candidate, stable, alternative="greater", method="asymptotic")``
    on the expanded samples. ``effect`` is the probability of superiority
    P(candidate > stable) + P(tie)/2, minus 0.5, so ``tolerance`` is on that scale. Fail needs
    ``pvalue`` below ``alpha`` and the effect's lower confidence bound above the tolerance;
    Pass its upper bound below. The bounds use the null variance of U: exact at no difference,
    approximate (usually wider than needed) away from it.
    """
    _check(tolerance, alpha)
    stable = counts_vector(stable_counts, "stable_counts")
    candidate = counts_vector(candidate_counts, "candidate_counts")
    if stable.shape != candidate.shape:
        raise ValueError(f"stable and candidate have {len(stable)} and {len(candidate)} bins; use the same buckets")
    n_s, n_c = float(stable.sum()), float(candidate.sum())
    early = _without_test(n_s, n_c, min_samples)
    if early:
        return early

    pooled = stable + candidate
    midranks = np.cumsum(pooled) - pooled + (pooled + 1) / 2
    u = float(candidate @ midranks - n_c * (n_c + 1) / 2)
    total = n_s + n_c
    ties = float(np.sum(pooled**3 - pooled))
    variance = n_s * n_c / 12 * ((total + 1) - ties / (total * (total - 1)))
    # With every observation in one bin U sits at its mean: no evidence of a difference.
    pvalue = float(stats.norm.sf((u - n_s * n_c / 2 - 0.5) / math.sqrt(variance))) if variance > 0 else 1.0
    effect = u / (n_s * n_c) - 0.5
    margin = stats.norm.isf(alpha) * math.sqrt(variance) / (n_s * n_c)
    return _judge(
        fail=pvalue < alpha and effect - margin > tolerance,
        passed=effect + margin < tolerance,
        statistic=u,
        pvalue=pvalue,
        effect=effect,
        sizes=(n_s, n_c),
        detail=f"P(candidate > stable) - 0.5 = {effect:.3f} +/- {margin:.3f} (tolerance {tolerance:g}), "
        f"Mann-Whitney p={pvalue:.3g}",
    )


def compare_proportions(
    stable_events: float,
    stable_total: float,
    candidate_events: float,
    candidate_total: float,
    *,
    tolerance: float,
    alpha: float = 0.05,
    higher_is_worse: bool = True,
    min_samples: int = 50,
) -> Comparison:
    """Non-inferiority score test on a proportion (error rate, or accuracy with
    ``higher_is_worse=False``).

    ``effect`` is the candidate's proportion minus the stable's, oriented so that positive is
    worse; ``tolerance`` is the largest acceptable worsening as an absolute difference. The
    Farrington-Manning score statistic ``z`` tests a difference of exactly ``tolerance``,
    with the variance at the maximum-likelihood proportions restricted to that difference,
    which holds its level far better than the Wald test when events are rare. ``pvalue`` is
    one-sided: evidence of worsening beyond the tolerance, so Fail is ``z`` above the normal
    ``1 - alpha`` quantile and Pass ``z`` below its negative. With ``tolerance=0`` this is the
    pooled two-proportion z-test. Counts are rounded to whole numbers.
    """
    _check(tolerance, alpha)
    if tolerance >= 1:
        raise ValueError("tolerance is an absolute difference of proportions and must be below 1")
    counts = np.rint([stable_events, stable_total, candidate_events, candidate_total])
    s_events, n_s, c_events, n_c = (float(x) for x in counts)
    if not (0 <= s_events <= n_s and 0 <= c_events <= n_c):
        raise ValueError("events must lie between 0 and their total")
    early = _without_test(n_s, n_c, min_samples)
    if early:
        return early

    if not higher_is_worse:
        s_events, c_events = n_s - s_events, n_c - c_events
    worse, better = c_events / n_c, s_events / n_s
    effect = worse - better
    restricted_worse = _restricted_mle(worse, n_c, better, n_s, tolerance)
    restricted_better = restricted_worse - tolerance
    se = math.sqrt(restricted_worse * (1 - restricted_worse) / n_c + restricted_better * (1 - restricted_better) / n_s)
    # se is 0 only with tolerance 0 and no events (or only events) on both sides: no difference.
    z = (effect - tolerance) / se if se > 0 else 0.0
    critical = stats.norm.isf(alpha)
    pvalue = float(stats.norm.sf(z))
    return _judge(
        fail=z > critical,
        passed=z < -critical,
        statistic=z,
        pvalue=pvalue,
        effect=effect,
        sizes=(n_s, n_c),
        detail=f"candidate {'worse' if effect > 0 else 'better'} by {abs(effect):.4g} "
        f"(tolerance {tolerance:g}), score z={z:.3g}, p={pvalue:.3g}",
    )


def _check(tolerance: float, alpha: float) -> None:
    if tolerance < 0:
        raise ValueError("tolerance must be non-negative")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie strictly between 0 and 1")


def _without_test(n_s: float, n_c: float, min_samples: int) -> Comparison | None:
    """NoData or Inconclusive when a side has too little to compare, else None."""
    if min(n_s, n_c) >= max(min_samples, 1):
        return None
    verdict: Verdict = "NoData" if min(n_s, n_c) == 0 else "Inconclusive"
    detail = f"{n_s:.0f} stable and {n_c:.0f} candidate samples, need {min_samples}"
    return Comparison(verdict, math.nan, math.nan, math.nan, int(n_s), int(n_c), detail)


def _judge(
    *, fail: bool, passed: bool, statistic: float, pvalue: float, effect: float, sizes: tuple[float, float], detail: str
) -> Comparison:
    verdict: Verdict = "Fail" if fail else "Pass" if passed else "Inconclusive"
    return Comparison(verdict, statistic, pvalue, float(effect), int(sizes[0]), int(sizes[1]), detail)


def _restricted_mle(p1: float, n1: float, p2: float, n2: float, delta: float) -> float:
    """Maximum-likelihood p1 under the constraint p1 - p2 = delta (Farrington & Manning, 1990):
    the root of a cubic, in closed form."""
    theta = n2 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta**2 + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (27 * a**3) - b * c / (6 * a**2) + d / (2 * a)
    u = math.copysign(math.sqrt(max(b**2 / (9 * a**2) - c / (3 * a), 0.0)), v)
    # u is 0 only for a triple root, at -b/3a.
    w = (math.pi + math.acos(min(max(v / u**3, -1.0), 1.0))) / 3 if u else math.pi / 2
    return min(max(2 * u * math.cos(w) - b / (3 * a), delta), 1.0)
