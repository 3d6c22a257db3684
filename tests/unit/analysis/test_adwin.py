"""ADWIN against the paper's algorithm written out with plain loops, for its power on a step and
for its false-alarm rate on stationary series."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from modelpilot.analysis.adwin import AdwinChange, adwin, adwin_batches


def adwin_by_hand(batches, delta, value_range=1.0):
    """Bifet & Gavaldà's ADWIN on observations arriving in batches (one each for a plain
    stream): after each batch, drop the oldest batch while any split W = W0 . W1 between
    batches has |mean(W0) - mean(W1)| >= eps_cut (variance form, delta' = delta / |W|).
    A shrink dropping batches older than the last change's first batch is that change:
    (first batch, window start, before, after)."""
    window, episodes = [], []
    for i, batch in enumerate(batches):
        if not batch or any(math.isnan(v) for v in batch):
            continue
        window.append((i, batch))
        dropped = []
        while True:
            points = [v for _, b in window for v in b]
            n = len(points)
            cut = False
            for split in [len([v for _, b in window[:k] for v in b]) for k in range(1, len(window))]:
                w0, w1 = points[:split], points[split:]
                m = 1 / (1 / len(w0) + 1 / len(w1))
                log_term = math.log(2 / (delta / n))
                eps = math.sqrt(2 / m * statistics.pvariance(points) * log_term) + 2 * value_range / (3 * m) * log_term
                cut = cut or abs(sum(w0) / len(w0) - sum(w1) / len(w1)) >= eps
            if not cut:
                break
            oldest = window.pop(0)
            dropped.append(oldest)
        if dropped:
            rest = [v for _, b in window for v in b]
            values = [v for _, b in dropped for v in b]
            if episodes and dropped[0][0] < episodes[-1][0]:
                first, gone, _, _ = episodes.pop()
                episodes.append((first, gone + values, window[0][0], rest))
            else:
                episodes.append((i, values, window[0][0], rest))
    return [(first, start, sum(gone) / len(gone), sum(rest) / len(rest)) for first, gone, start, rest in episodes]


@pytest.mark.parametrize("seed", range(6))
def test_changes_match_the_algorithm_written_out(seed):
    rng = np.random.default_rng(seed)
    # Small series with one or two shifts of various sizes, some NaN points, a value range of 1.
    n = int(rng.integers(15, 40))
    shift_at = int(rng.integers(3, n - 3))
    values = np.where(np.arange(n) < shift_at, 0.9, 0.9 - rng.uniform(0.05, 0.4)) + rng.normal(0, 0.03, n)
    values[rng.integers(0, n, size=2)] = np.nan
    delta = float(rng.choice([0.002, 0.05, 0.2]))
    found = [(c.index, c.start, c.before, c.after) for c in adwin(values, delta=delta)]
    expected = adwin_by_hand([[v] for v in values], delta)
    assert [f[:2] for f in found] == [e[:2] for e in expected]
    assert np.allclose([f[2:] for f in found], [e[2:] for e in expected]) if expected else found == []


@pytest.mark.parametrize("seed", range(4))
def test_batches_are_their_observations_split_only_between_batches(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(5, 40, size=25)
    correct = rng.binomial(labels, np.where(np.arange(25) < 12, 0.95, 0.6))
    labels[3] = correct[3] = 0  # a step without labels is skipped
    outcomes = [[1.0] * int(c) + [0.0] * int(n - c) for c, n in zip(correct, labels)]
    found = [(c.index, c.start, c.before, c.after) for c in adwin_batches(correct, labels, correct, delta=0.01)]
    expected = adwin_by_hand(outcomes, 0.01)
    assert expected and [f[:2] for f in found] == [e[:2] for e in expected]
    assert np.allclose([f[2:] for f in found], [e[2:] for e in expected])


def test_a_step_down_is_found_soon_with_its_size():
    # Plain values need long streams: the bound's range term shrinks as 1/n, not 1/sqrt(n).
    values = [0.95] * 100 + [0.60] * 100
    changes = adwin(values, delta=0.002)
    assert len(changes) == 1
    change = changes[0]
    assert 100 < change.index <= 200
    # ADWIN drops old points only as far as its bound makes it sure: the window kept still
    # holds some of the old regime, so the mean after lies between the two levels.
    assert change.before == pytest.approx(0.95) and 0.6 < change.after < 0.8
    assert change.magnitude == pytest.approx(change.after - 0.95)
    assert change == AdwinChange(change.index, change.start, change.before, change.after)


def test_the_value_range_scales_the_bound():
    # A shift of 5 units is large for values in [0, 1] but small beside a range of 1000.
    values = [10.0] * 100 + [15.0] * 100
    assert adwin(values, value_range=5.0)
    assert not adwin(values, value_range=1000.0)


def test_stationary_series_raise_false_alarms_at_no_more_than_delta_per_point():
    rng = np.random.default_rng(11)
    delta, trials, days = 0.05, 600, 30
    # Right and wrong predictions from 200 labels a day at accuracy 0.9.
    labels = np.full(days, 200)
    correct = rng.binomial(200, 0.9, size=(trials, days))
    alarms = sum(len(adwin_batches(c, labels, c, delta=delta)) for c in correct)
    assert alarms / (trials * days) <= delta
    # And it is not blind: a fall of 0.1 halfway is found in nearly every series, a few days on.
    fallen = rng.binomial(200, np.where(np.arange(days) >= days // 2, 0.8, 0.9), size=(trials // 3, days))
    first = [adwin_batches(c, labels, c, delta=delta) for c in fallen]
    assert sum(bool(f) and f[0].magnitude < 0 and f[0].index >= days // 2 for f in first) / len(first) > 0.95
    assert np.median([f[0].index - days // 2 for f in first if f]) <= 6


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        adwin([1.0, 2.0], delta=0.0)
    with pytest.raises(ValueError):
        adwin([1.0, 2.0], value_range=0.0)
