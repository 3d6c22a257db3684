"""The readable forms of a monitor's headline figures, as `kubectl get mm` prints them."""

from __future__ import annotations

import math

import pytest

from modelpilot.reconcile.monitor.summary import latency_text, percent_text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.8412, "84.1%"),
        (0.002, "0.2%"),
        (0.0, "0.0%"),
        (1.0, "100.0%"),
        # A rate that one decimal would show as 0.0% or 100.0% gets the decimals it needs.
        (0.00012, "0.01%"),
        (0.99996, "99.996%"),
        (0.000001, "0.000%"),
    ],
)
def test_percent_text_shows_one_decimal_unless_that_hides_the_figure(fraction: float, text: str) -> None:
    assert percent_text(fraction) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.00334635, "3.35ms"), (0.25, "250ms"), (1.5, "1.5s"), (0.00042, "420us"), (0.0, "0s"), (12.0, "12s")],
)
def test_latency_text_keeps_the_figure_between_one_and_a_thousand(seconds: float, text: str) -> None:
    assert latency_text(seconds) == text


@pytest.mark.parametrize("value", [None, math.nan, math.inf])
def test_no_text_for_a_missing_or_non_finite_figure(value: float | None) -> None:
    assert percent_text(value) is None and latency_text(value) is None
