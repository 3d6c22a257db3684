"""Resource figures and right-sizing rules on usage samples: now, average and peak of a set of
per-replica series, and KRR's rules for requests and limits (CPU at a percentile of usage,
memory at its peak plus a margin). Knows nothing of pods, containers or Kubernetes quantities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "MIN_CPU_CORES",
    "MIN_MEMORY_BYTES",
    "SeriesSummary",
    "cpu_request",
    "memory_request",
    "summarise",
]

#: Floors of a recommendation, as KRR's: a request below them schedules nothing useful.
MIN_CPU_CORES = 0.01
MIN_MEMORY_BYTES = 100 * 2**20


@dataclass(frozen=True)
class SeriesSummary:
    """Figures of several series of one quantity (one per replica), over a time range."""

    current: float
    average: float
    peak: float
    samples: int
    span_seconds: float


def _finite(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    kept = []
    for times, values in series:
        t, v = np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)
        ok = np.isfinite(t) & np.isfinite(v)
        if ok.any():
            kept.append((t[ok], v[ok]))
    return kept


def summarise(
    series: Sequence[tuple[np.ndarray, np.ndarray]], *, current: Literal["mean", "max"] = "mean"
) -> SeriesSummary | None:
    """Now (the series' values at the latest time any has, averaged or the largest), the mean of
    every sample, the largest sample, the sample count and the time spanned; None without samples.
    Non-finite points are left out."""
    kept = _finite(series)
    if not kept:
        return None
    latest = max(float(t[-1]) for t, _ in kept)
    now = np.array([float(v[-1]) for t, v in kept if float(t[-1]) == latest])
    pooled = np.concatenate([v for _, v in kept])
    earliest = min(float(t[0]) for t, _ in kept)
    return SeriesSummary(
        current=float(now.mean() if current == "mean" else now.max()),
        average=float(pooled.mean()),
        peak=float(pooled.max()),
        samples=int(pooled.size),
        span_seconds=latest - earliest,
    )


def cpu_request(samples: np.ndarray, percentile: float) -> tuple[float, float]:
    """KRR's CPU request: the ``percentile`` (0-1) of every usage sample of every replica
    (linear interpolation), at least ``MIN_CPU_CORES``. Returns (request, the percentile)."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no usage samples")
    level = float(np.percentile(values, percentile * 100))
    return max(level, MIN_CPU_CORES), level


def memory_request(samples: np.ndarray, margin: float) -> tuple[float, float]:
    """KRR's memory request and limit: the peak working set times ``1 + margin``, at least
    ``MIN_MEMORY_BYTES``. Returns (request, the peak)."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no usage samples")
    peak = float(values.max())
    return max(peak * (1 + margin), MIN_MEMORY_BYTES), peak
