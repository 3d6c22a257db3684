"""ADWIN, the adaptive windowing change detector of Bifet and Gavaldà (2007), for concept drift
in a quality series: where the mean moved, and from what to what."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["AdwinChange", "adwin", "adwin_batches"]


@dataclass(frozen=True)
class AdwinChange:
    """One shrink of ADWIN's window: at point ``index`` the oldest points were dropped until no
    split of the window showed a difference of means; ``before`` is the mean of the dropped
    observations, ``after`` that of the window kept, which starts at point ``start``."""

    index: int
    start: int
    before: float
    after: float

    @property
    def magnitude(self) -> float:
        """``after - before``: negative for a fall."""
        return self.after - self.before


def adwin(values: ArrayLike, *, delta: float = 0.002, value_range: float = 1.0) -> list[AdwinChange]:
    """The changes ADWIN finds in a stream of ``values``, oldest first; the shrinks that drop
    points from before a change was found are that change.

    ADWIN keeps the points since the last change. After each new point, while some split of the
    window W into an older part W0 (n0 points) and a newer part W1 (n1 points) has means
    further apart than ``eps_cut``, it drops the oldest point. This is the exact algorithm of
    the paper's section 3, every split checked, with its variance-based bound (the one the
    paper recommends in practice):

        m = 1 / (1/n0 + 1/n1),  delta' = delta / n,  n = |W|
        eps_cut = sqrt(2/m * var(W) * ln(2/delta')) + 2/(3m) * value_range * ln(2/delta')

    Bernstein's inequality keeps the probability of a false alarm at each point at most
    ``delta`` while the mean stays put, for values within a range of width ``value_range``.
    The bound is for long streams: on tens of points only a shift of several standard
    deviations beyond the range term fires. NaN points are skipped; indices refer to ``values``.
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    return adwin_batches(data, np.ones_like(data), data * data, delta=delta, value_range=value_range)


def adwin_batches(
    sums: ArrayLike, counts: ArrayLike, squares: ArrayLike, *, delta: float = 0.002, value_range: float = 1.0
) -> list[AdwinChange]:
    """ADWIN over a stream that arrives in batches: point ``i`` holds ``counts[i]`` observations
    with sum ``sums[i]`` and sum of squares ``squares[i]`` (for outcomes that are right or
    wrong, ``squares`` is ``sums``). As ``adwin`` on the observations themselves, with the
    window split only between batches, since the order within a batch is unknown; ``n`` is the
    number of observations, so a quality series of daily label counts gets the paper's
    guarantees at the size of its thousands of labels. Points with a NaN or no observations
    are skipped.
    """
    if not 0 < delta < 1:
        raise ValueError("delta must lie strictly between 0 and 1")
    if not value_range > 0:
        raise ValueError("value_range must be positive")
    total = np.asarray(sums, dtype=np.float64).ravel()
    count = np.asarray(counts, dtype=np.float64).ravel()
    square = np.asarray(squares, dtype=np.float64).ravel()
    if not total.shape == count.shape == square.shape:
        raise ValueError("sums, counts and squares must have one entry per point")
    changes: list[AdwinChange] = []
    kept: list[int] = []  # the window's points, oldest first
    gone: list[int] = []  # the points dropped by the shrinks of the change being reported
    for i in range(len(total)):
        if not (count[i] > 0 and math.isfinite(total[i] + count[i] + square[i])):
            continue
        kept.append(i)
        dropped = 0
        while len(kept) - dropped >= 2:
            window = kept[dropped:]
            if not _has_cut(total[window], count[window], square[window], delta, value_range):
                break
            dropped += 1
        if dropped:
            # A shrink that drops points from before the last change was found is that change
            # seen more sharply: one entry, its first point, the points dropped by all its
            # shrinks and the window after the last.
            continuing = bool(changes) and kept[0] < changes[-1].index
            gone = [*gone, *kept[:dropped]] if continuing else kept[:dropped]
            kept = kept[dropped:]
            index = changes.pop().index if continuing else i
            before = float(total[gone].sum() / count[gone].sum())
            after = float(total[kept].sum() / count[kept].sum())
            changes.append(AdwinChange(index=index, start=kept[0], before=before, after=after))
    return changes


def _has_cut(sums: np.ndarray, counts: np.ndarray, squares: np.ndarray, delta: float, value_range: float) -> bool:
    """Whether some split between the window's batches has sub-window means ``eps_cut`` apart."""
    n = float(counts.sum())
    n0 = np.cumsum(counts)[:-1]
    n1 = n - n0
    head = np.cumsum(sums)[:-1]
    mean0 = head / n0
    mean1 = (sums.sum() - head) / n1
    variance = max(float(squares.sum()) / n - (float(sums.sum()) / n) ** 2, 0.0)
    m = 1 / (1 / n0 + 1 / n1)
    log_term = math.log(2 * n / delta)
    eps = np.sqrt(2 / m * variance * log_term) + 2 / (3 * m) * value_range * log_term
    return bool(np.any(np.abs(mean0 - mean1) >= eps))
