"""Two count vectors over the same bins compared: the sparse-bin merge rule, PSI, Jensen–Shannon
distance and the two-sample chi-square that every drift path ends in."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

__all__ = ["BinComparison", "compare_bins", "counts_vector"]


@dataclass(frozen=True)
class BinComparison:
    """Statistics of two windows on the merged bins."""

    n_bins: int
    psi: float
    psi_expected: float
    js: float
    chi2: float
    chi2_pvalue: float


def counts_vector(values: ArrayLike, name: str) -> np.ndarray:
    """Validated counts, rounded to whole numbers.

    Prometheus ``increase()`` extrapolates to the window's edges, so counts arrive as floats;
    the chi-square needs counts and the fraction is extrapolation, not information.
    """
    counts = np.asarray(values, dtype=np.float64)
    if counts.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional vector of counts")
    if not np.all(np.isfinite(counts)):
        raise ValueError(f"{name} holds a NaN or infinite count")
    counts = np.rint(counts)
    if np.any(counts < 0):
        raise ValueError(f"{name} holds a negative count; clamp de-cumulated buckets at zero")
    return counts


def merge_labels(pooled: np.ndarray, threshold: float, *, ordered: bool) -> np.ndarray:
    """Group label of each bin so that every group's pooled count reaches ``threshold``.

    Ordered bins (histogram buckets, values) are merged with their right neighbours, left to
    right, and a sparse remainder joins the last group, so groups stay intervals. Unordered bins
    (categories) move, rarest first, into one "other" group until it and every category left
    reach the threshold. Either way at least two groups remain when two bins are non-empty: if
    the rule would merge everything, the modal bin is kept apart from the rest.

    Only the pooled counts decide, and the chi-square conditions on them anyway, so the merge
    does not inflate the test's size.
    """
    if ordered:
        labels = np.zeros(len(pooled), dtype=np.intp)
        group, filled = 0, 0.0
        for i, count in enumerate(pooled):
            labels[i] = group
            filled += count
            if filled >= threshold:
                group, filled = group + 1, 0.0
        if group > 0:
            labels[labels == group] = group - 1
    else:
        labels = np.arange(len(pooled))
        other = 0.0
        for i in np.argsort(pooled, kind="stable"):
            if pooled[i] >= threshold and not 0 < other < threshold:
                break
            labels[i] = -1
            other += pooled[i]
        labels = np.unique(labels, return_inverse=True)[1]
    if labels.max() == 0 and np.count_nonzero(pooled) > 1:
        labels = (np.arange(len(pooled)) != np.argmax(pooled)).astype(np.intp)
    return labels


def compare_bins(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    ordered: bool,
    min_expected: float,
    smoothing: float,
) -> BinComparison:
    """PSI, JS and chi-square of two count vectors after merging sparse bins.

    Needs at least two bins with pooled counts and non-empty windows. The merge threshold is
    the pooled count at which the smaller window's expected count reaches ``min_expected``.
    """
    pooled = reference + current
    occupied = pooled > 0
    reference, current, pooled = reference[occupied], current[occupied], pooled[occupied]
    n_ref, n_cur = reference.sum(), current.sum()
    total = n_ref + n_cur
    labels = merge_labels(pooled, min_expected * total / min(n_ref, n_cur), ordered=ordered)
    ref = np.bincount(labels, weights=reference)
    cur = np.bincount(labels, weights=current)
    bins = len(ref)

    # Additive smoothing keeps PSI finite for bins empty on one side without the arbitrary
    # blow-up an epsilon gives; it shrinks both windows alike.
    ref_share = (ref + smoothing) / (n_ref + smoothing * bins)
    cur_share = (cur + smoothing) / (n_cur + smoothing * bins)
    psi = float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))
    # PSI is a symmetrised KL divergence: under no drift n_ref*n_cur/(n_ref+n_cur) * PSI is
    # asymptotically chi-square with bins-1 degrees of freedom, whose mean gives this.
    psi_expected = float((bins - 1) * (1.0 / n_ref + 1.0 / n_cur))

    p, q = ref / n_ref, cur / n_cur
    middle = (p + q) / 2
    divergence = (special.rel_entr(p, middle).sum() + special.rel_entr(q, middle).sum()) / 2
    js = math.sqrt(max(float(divergence), 0.0) / math.log(2))

    expected = np.outer([n_ref, n_cur], ref + cur) / total
    chi2 = float(np.sum((np.vstack([ref, cur]) - expected) ** 2 / expected))
    # chdtrc is chi2.sf without the distribution object's overhead: 28% of a feature test.
    chi2_pvalue = float(special.chdtrc(bins - 1, chi2))
    return BinComparison(bins, psi, psi_expected, js, chi2, chi2_pvalue)
