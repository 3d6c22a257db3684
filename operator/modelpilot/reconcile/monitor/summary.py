"""A ModelMonitor's headline figures, as numbers for machines and as text for `kubectl get`.

Printer columns take a JSONPath and nothing more, so the readable forms (a percentage, a
latency with its unit) are written to status beside the numbers they come from.
"""

from __future__ import annotations

import math

__all__ = ["latency_text", "percent_text"]


def percent_text(fraction: float | None) -> str | None:
    """``0.8412 -> "84.1%"``, with more decimals where one would show a non-zero rate as 0.0%
    or a rate short of one as 100.0%."""
    if fraction is None or not math.isfinite(fraction):
        return None
    text = f"{fraction:.1%}"
    for digits in (1, 2, 3):
        text = f"{fraction:.{digits}%}"
        shown = float(text[:-1])
        if not ((fraction > 0 and shown == 0) or (fraction < 1 and shown == 100)):
            break
    return text


def latency_text(seconds: float | None) -> str | None:
    """Seconds with a unit that keeps the figure between 1 and 1000: ``0.00334635 -> "3.35ms"``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds == 0:
        return "0s"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{seconds / scale:.3g}{unit}"
    return f"{seconds / 1e-6:.3g}us"
