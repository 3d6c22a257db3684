"""Concept drift of a monitor's quality series: ADWIN or Page-Hinkley, and the shift's size in status."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from modelpilot.analysis import page_hinkley
from modelpilot.api import MODEL_MONITOR, load_spec
from modelpilot.api.monitor import ModelMonitorStatus
from modelpilot.reconcile.monitor.observations import MonitorObservations
from modelpilot.reconcile.monitor.quality import assess_degradation
from modelpilot.reconcile.queries import QueryOutcome, Series

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = [NOW.timestamp() - 86400 * (29 - i) for i in range(30)]


def spec(**degradation: object):
    return load_spec(
        MODEL_MONITOR,
        {
            "model": {"name": "m"},
            "prometheus": {"url": "http://prometheus:9090"},
            "degradation": {"horizon": "30d", "step": "1d", **degradation},
        },
    )


def quality_series(correct: list[int], labelled: int = 1000) -> MonitorObservations:
    """Two classes, ``correct[i]`` of ``labelled`` right on day i."""
    cells = {("a", "a"): [], ("b", "b"): [], ("a", "b"): [], ("b", "a"): []}
    for t, right in zip(DAYS, correct):
        for (predicted, actual), points in cells.items():
            share = right if predicted == actual else labelled - right
            points.append((t, share / 2))
    series = tuple(Series({"predicted": p, "actual": a}, tuple(points)) for (p, a), points in cells.items())
    return MonitorObservations(at=NOW, version="1", quality_series=QueryOutcome("q", series=series))


def test_adwin_finds_a_fall_in_accuracy_with_its_size() -> None:
    correct = [950] * 15 + [850] * 15
    status, verdict = assess_degradation(spec(detector="adwin"), quality_series(correct), ModelMonitorStatus())
    assert (verdict.status, verdict.reason) == ("True", "ChangePointDetected")
    assert "ADWIN" in verdict.message
    assert status.detector == "adwin" and len(status.change_points) == 1
    found = status.change_points[0].timestamp()
    assert DAYS[15] <= found <= DAYS[20]  # a few days after the fall, on thousands of labels
    assert status.before == pytest.approx(0.95)
    assert 0.85 <= status.after < 0.9 and status.magnitude == pytest.approx(status.after - status.before)


def test_adwin_stays_quiet_on_steady_accuracy() -> None:
    correct = list(np.random.default_rng(3).binomial(1000, 0.93, size=30))
    status, verdict = assess_degradation(spec(detector="adwin"), quality_series(correct), ModelMonitorStatus())
    assert (verdict.status, verdict.reason) == ("False", "NoChangePoint")
    assert status.change_points == [] and status.magnitude is None


def test_adwin_on_a_rise_reports_no_downward_shift() -> None:
    correct = [850] * 15 + [950] * 15
    _, verdict = assess_degradation(spec(detector="adwin"), quality_series(correct), ModelMonitorStatus())
    assert verdict.status == "False"


def test_page_hinkley_reports_the_means_either_side_of_its_alarm() -> None:
    correct = [950] * 15 + [800] * 15
    settings = spec(detector="page-hinkley", delta=0.005, threshold=0.05)
    status, verdict = assess_degradation(settings, quality_series(correct), ModelMonitorStatus())
    values = np.array(correct) / 1000
    alarms = page_hinkley(values, delta=0.005, threshold=0.05, direction="decrease")
    assert verdict.status == "True" and len(alarms) == 1
    i = alarms[0]
    assert status.change_points == [datetime.fromtimestamp(DAYS[i], UTC)]
    assert status.before == pytest.approx(values[:i].mean()) and status.after == pytest.approx(values[i:].mean())
