"""The OpenMetrics history writer: valid output, monotonic counters, exact and seeded counts."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString
from scipy import stats

from tests.support.history import MetricsHistory, format_le, prometheus_increase

START = datetime(2026, 3, 1, tzinfo=UTC)
STEP = timedelta(hours=1)
END = START + timedelta(days=2)
MODEL = {"model": "churn", "version": "3"}
BUCKETS = [0.5, 1, 2.5, 5, 10]


def small_history(seed: int = 11) -> MetricsHistory:
    history = MetricsHistory(START, END, STEP, seed=seed)
    shift = START + timedelta(days=1)
    before, after = stats.norm(2, 1), stats.norm(4, 2)
    history.histogram(
        "model_feature_value", {**MODEL, "feature": "age"}, BUCKETS, 0.5,
        lambda t: after if t >= shift else before,
    )  # fmt: skip
    history.histogram("model_feature_value", {**MODEL, "feature": "income"}, BUCKETS, 0.5, before)
    history.counter("model_requests_total", {**MODEL, "status": "success"}, 1.0)
    history.categorical(
        "model_predictions", MODEL, "class", lambda t: 0.2 if t < shift else 0.4,
        lambda t: {"yes": 0.3, "no": 0.7} if t < shift else {"yes": 0.5, "no": 0.3, "maybe": 0.2},
    )  # fmt: skip
    history.feedback("model_feedback_total", MODEL, ["yes", "no"], 0.1, [0.3, 0.7], 0.9)
    history.gauge("model_loaded", MODEL, lambda t: 1.0 if t < shift else 0.5)
    return history


def parse(path: Path) -> dict[str, tuple[str, dict[tuple[str, tuple], list[tuple[float, float]]]]]:
    """family -> (type, {(sample name, sorted labels): [(time, value), ...]}), validated by
    prometheus_client's OpenMetrics parser.

    Each timestamp's samples are parsed as an exposition of their own, and the whole file minus
    its histograms in one go (grammar, family grouping, time order within each metric). The
    parser cannot take a histogram with several timestamps: it keeps only the first bucket of
    each later timestamp (its duplicate check never forgets a series within a metric) and then
    reports a missing +Inf bucket. For histograms the whole-file rules are checked here instead.
    """
    families: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("# TYPE"):
            families[line] = current = []
        elif line != "# EOF":
            current.append(line)
    whole = "".join(
        "\n".join([type_line, *lines]) + "\n" for type_line, lines in families.items() if not type_line.endswith(" histogram")
    )
    list(text_string_to_metric_families(whole + "# EOF\n"))
    for type_line, lines in families.items():
        if type_line.endswith(" histogram"):
            check_histogram_metrics_are_contiguous_and_in_time_order(lines)

    snapshots: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for type_line, lines in families.items():
        for line in lines:
            snapshots[line.rsplit(" ", 1)[1]][type_line].append(line)
    parsed: dict[str, tuple[str, dict[tuple[str, tuple], list[tuple[float, float]]]]] = {}
    for stamp in sorted(snapshots, key=float):
        document = "".join("\n".join([type_line, *lines]) + "\n" for type_line, lines in snapshots[stamp].items())
        for family in text_string_to_metric_families(document + "# EOF\n"):
            _, series = parsed.setdefault(family.name, (family.type, defaultdict(list)))
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                series[key].append((float(sample.timestamp), float(sample.value)))
    return parsed


def check_histogram_metrics_are_contiguous_and_in_time_order(lines: list[str]) -> None:
    done: set[str] = set()
    metric, last_time = None, -math.inf
    for line in lines:
        series, _, stamp = line.rsplit(" ", 2)
        labels = series[series.index("{") :]
        parts = labels.strip("{}").split(",")
        group = ",".join(part for part in parts if not part.startswith("le="))
        if group != metric:
            assert group not in done, f"metric {group} is split: {line}"
            if metric is not None:
                done.add(metric)
            metric, last_time = group, -math.inf
        assert float(stamp) >= last_time, f"time goes backwards: {line}"
        last_time = float(stamp)


def test_written_history_is_valid_openmetrics_with_every_value(tmp_path: Path) -> None:
    history = small_history()
    path = tmp_path / "history.om"

    written = history.write_openmetrics(path)

    text = path.read_text()
    assert text.endswith("# EOF\n")
    parsed = parse(path)
    assert {name: kind for name, (kind, _) in parsed.items()} == {
        "model_feature_value": "histogram",
        "model_requests": "counter",
        "model_predictions": "counter",
        "model_feedback": "counter",
        "model_loaded": "gauge",
    }
    points_read = [points for _, series in parsed.values() for points in series.values()]
    assert sum(map(len, points_read)) == written
    for _, series in parsed.values():
        for (name, labels), points in series.items():
            times = np.array([t for t, _ in points])
            values = np.array([v for _, v in points])
            expected = history.values(name, dict(labels))
            # Exact: integers as integers, sums and gauges through repr, which round-trips.
            np.testing.assert_array_equal(values, expected[len(expected) - len(values) :])
            np.testing.assert_array_equal(times, history.timestamps[len(expected) - len(values) :])


def test_counters_start_at_zero_and_never_decrease() -> None:
    history = small_history()

    counters = [
        values
        for name in ("model_requests_total", "model_predictions_total", "model_feedback_total",
                     "model_feature_value_bucket", "model_feature_value_count")
        for _, values in history.select(name)
    ]  # fmt: skip

    assert len(counters) == 1 + 3 + 4 + 12 + 2
    for values in counters:
        assert values[0] == 0
        assert np.all(np.diff(values) >= 0)


def test_histogram_buckets_are_cumulative_and_inf_equals_count() -> None:
    history = small_history()
    labels = {**MODEL, "feature": "age"}

    buckets = np.array(
        [history.values("model_feature_value_bucket", {**labels, "le": format_le(b)})
         for b in [*BUCKETS, math.inf]]
    )  # fmt: skip

    assert np.all(np.diff(buckets, axis=0) >= 0)
    np.testing.assert_array_equal(buckets[-1], history.values("model_feature_value_count", labels))
    assert buckets[-1, -1] > 0
    total = history.values("model_feature_value_sum", labels)
    assert np.all(np.diff(total) >= 0)  # every observation is positive here


def test_histogram_follows_the_distribution_of_each_interval() -> None:
    history = MetricsHistory(START, START + timedelta(days=20), STEP, seed=3)
    shift = START + timedelta(days=10)
    before, after = stats.norm(2, 1), stats.norm(4, 1)
    labels = {"feature": "x"}
    history.histogram("v", labels, [1, 2, 3, 4, 5], 2.0, lambda t: after if t >= shift else before)

    def share_below_2(since: datetime, until: datetime) -> float:
        below = history.increase("v_bucket", {**labels, "le": "2.0"}, since, until)
        return below / history.increase("v_count", labels, since, until)

    assert share_below_2(START, shift) == pytest.approx(before.cdf(2), abs=0.01)
    assert share_below_2(shift, history.end) == pytest.approx(after.cdf(2), abs=0.01)
    mean = history.increase("v_sum", labels, shift, history.end) / history.increase("v_count", labels, shift, history.end)
    assert mean == pytest.approx(4, abs=0.05)


def test_parameters_at_an_intervals_start_govern_its_draws() -> None:
    history = MetricsHistory(START, END, STEP, seed=5)
    switch = START + timedelta(days=1)
    history.counter("events", {}, lambda t: 0.0 if t < switch else 1.0)

    assert history.increase("events_total", {}, START, switch) == 0
    assert history.increase("events_total", {}, switch, switch + STEP) > 0


def test_increase_is_the_exact_sum_of_draws_between_two_times(tmp_path: Path) -> None:
    history = small_history()
    path = tmp_path / "history.om"
    history.write_openmetrics(path)
    points = parse(path)["model_requests"][1][("model_requests_total", tuple(sorted({**MODEL, "status": "success"}.items())))]
    since, until = START + timedelta(hours=5), START + timedelta(hours=29)
    value_at = {datetime.fromtimestamp(t, UTC): v for t, v in points}

    labels = {**MODEL, "status": "success"}
    increase = history.increase("model_requests_total", labels, since, until)

    assert increase == value_at[until] - value_at[since]
    # Between samples, a time reads the sample before it.
    assert increase == history.increase(
        "model_requests_total", labels, since + timedelta(minutes=59), until + timedelta(minutes=1)
    )


def test_same_seed_same_file_and_series_do_not_disturb_each_other(tmp_path: Path) -> None:
    small_history(seed=1).write_openmetrics(tmp_path / "a.om")
    small_history(seed=1).write_openmetrics(tmp_path / "b.om")
    small_history(seed=2).write_openmetrics(tmp_path / "c.om")

    assert (tmp_path / "a.om").read_bytes() == (tmp_path / "b.om").read_bytes()
    assert (tmp_path / "a.om").read_bytes() != (tmp_path / "c.om").read_bytes()
    alone = MetricsHistory(START, END, STEP, seed=1)
    alone.counter("model_requests_total", {**MODEL, "status": "success"}, 1.0)
    labels = {**MODEL, "status": "success"}
    np.testing.assert_array_equal(
        alone.values("model_requests_total", labels),
        small_history(seed=1).values("model_requests_total", labels),
    )


def test_a_category_appears_when_its_weights_first_name_it(tmp_path: Path) -> None:
    history = small_history()
    path = tmp_path / "history.om"
    history.write_openmetrics(path)
    _, series = parse(path)["model_predictions"]
    first_time = {dict(labels)["class"]: points[0][0] for (_, labels), points in series.items()}

    shift = (START + timedelta(days=1)).timestamp()
    assert first_time == {"yes": START.timestamp(), "no": START.timestamp(), "maybe": shift}
    maybe = history.values("model_predictions_total", {**MODEL, "class": "maybe"})
    assert np.all(maybe[: history.index(START + timedelta(days=1)) + 1] == 0)
    assert maybe[-1] > 0


def test_feedback_is_a_confusion_matrix_with_the_given_accuracy() -> None:
    history = MetricsHistory(START, START + timedelta(days=30), STEP, seed=9)
    drop = START + timedelta(days=15)
    history.feedback(
        "model_feedback_total", MODEL, ["a", "b", "c"], 1.0, {"a": 0.5, "b": 0.3, "c": 0.2},
        lambda t: 0.9 if t < drop else {"a": 0.9, "b": 0.9, "c": 0.3},
    )  # fmt: skip

    def cells(since: datetime, until: datetime) -> dict[tuple[str, str], float]:
        return {
            (labels["predicted"], labels["actual"]): history.increase("model_feedback_total", labels, since, until)
            for labels, _ in history.select("model_feedback_total", MODEL)
        }

    before, after = cells(START, drop), cells(drop, history.end)
    assert len(before) == 9
    total = sum(before.values())
    assert sum(before[(p, p)] for p in "abc") / total == pytest.approx(0.9, abs=0.01)
    actual_a = sum(v for (_, actual), v in before.items() if actual == "a")
    assert actual_a / total == pytest.approx(0.5, abs=0.01)
    recall_c = after[("c", "c")] / sum(v for (_, a), v in after.items() if a == "c")
    assert recall_c == pytest.approx(0.3, abs=0.03)
    # Errors spread evenly over the other classes.
    assert after[("a", "c")] == pytest.approx(after[("b", "c")], rel=0.1)


def test_feedback_with_perfect_accuracy_has_an_empty_off_diagonal() -> None:
    history = MetricsHistory(START, END, STEP, seed=9)
    history.feedback("model_feedback_total", MODEL, ["a", "b"], 1.0, [0.5, 0.5], 1.0)

    for labels, values in history.select("model_feedback_total"):
        assert (values[-1] > 0) == (labels["predicted"] == labels["actual"])


def test_le_labels_are_spelled_as_the_python_client_spells_them() -> None:
    for bound in [0.005, 0.1, 0.25, 1, 2.5, 10, 1e6, 12345678.0, 1e-7, math.inf]:
        assert format_le(bound) == floatToGoString(bound)


def test_prometheus_increase_is_exact_on_aligned_windows_and_extrapolates_otherwise() -> None:
    times = np.arange(0, 3600 + 1, 60.0)  # a sample every minute
    values = times / 6  # 10 per minute

    assert prometheus_increase(times, values, at=1800, window=600) == 100
    # 30 s past a sample the range is [1230 s, 1830 s]: its samples run from 1260 s to 1800 s,
    # 30 s from either end (under 1.1 intervals), so 540 s of samples stretch to all 600 s.
    assert prometheus_increase(times, values, at=1830, window=600) == pytest.approx(90 * 600 / 540)
    # Never before zero: a counter at 0 at 100 s and 10 at 160 s extrapolates back to 100 s only.
    assert prometheus_increase(times[:2] + 100, values[:2], at=160, window=600) == 10
    assert prometheus_increase(times, values, at=30, window=10) is None


def test_history_writes_and_checks_what_it_is_given() -> None:
    naive = datetime(2026, 3, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        MetricsHistory(naive, naive + timedelta(days=1), STEP)
    history = MetricsHistory(START, END, STEP)
    with pytest.raises(ValueError, match="distinct finite"):
        history.histogram("h", {}, [1, 1, 2], 1.0, stats.norm())
    with pytest.raises(ValueError, match="set by the series"):
        history.histogram("h", {"le": "1"}, [1, 2], 1.0, stats.norm())
    with pytest.raises(ValueError, match="sum to 0"):
        history.categorical("c", {}, "kind", 1.0, {"a": 0.0})
    history.counter("x_total", {"a": "1"}, 1.0)
    with pytest.raises(ValueError, match="defined twice"):
        history.counter("x", {"a": "1"}, 2.0)
    with pytest.raises(ValueError, match="already a counter"):
        history.gauge("x", {"a": "2"}, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        history.counter("y", {}, -1.0)
    with pytest.raises(KeyError):
        history.values("x_total", {"a": "2"})


def test_end_is_rounded_down_to_a_whole_step() -> None:
    history = MetricsHistory(START, START + timedelta(hours=5, minutes=30), STEP)

    assert history.end == START + timedelta(hours=5)
    assert len(history.times) == 6
    assert history.timestamps[1] - history.timestamps[0] == 3600
