"""Seeded metric histories spanning weeks, written as OpenMetrics for `promtool` to backfill.

A test describes what a model server would have exported (counters, histograms, counters split
by a label, the feedback confusion matrix, gauges) and gets exact, reproducible counts to check
Prometheus's answers against.

Time model: samples lie at ``start + i * step`` up to ``end``. Every series starts at 0 at its
first sample; the events of the interval ``(t, t + step]`` are drawn with the parameters (rate,
distribution, probabilities) evaluated at ``t``, the interval's start. So a change at time ``D``
that is a sample time affects exactly the intervals starting at or after ``D``, and
``increase(name, labels, a, b)`` is exactly the sum of the draws of the intervals in ``[a, b)``.

Every series gets its own random generator, derived from ``seed`` and the series' name and
labels: the same description gives the same numbers, and adding a series changes no other.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np

__all__ = [
    "Distribution",
    "MetricsHistory",
    "format_le",
    "prometheus_increase",
]


class Distribution(Protocol):
    """What a histogram needs of a distribution: a frozen scipy distribution fits.

    ``cdf`` takes an array of bucket bounds. When the object also has ``ppf``, each bucket's
    ``_sum`` contribution is its conditional median; without it, the bucket's midpoint.
    """

    def cdf(self, x: Any) -> Any: ...


Rate: TypeAlias = "float | Callable[[datetime], float]"
"""Events per second, constant or a function of the interval's start time."""

Weights: TypeAlias = "Mapping[Any, float] | Callable[[datetime], Mapping[Any, float]]"
"""Category -> weight (normalised per interval), constant or a function of time."""

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_le(bound: float) -> str:
    """The ``le`` label value of a bucket bound, spelled as the Python client spells it.

    ``0.5 -> "0.5"``, ``1 -> "1.0"``, ``inf -> "+Inf"``; matches prometheus_client, so a
    backfilled history and the example model server write the same series.
    """
    value = float(bound)
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go (and the Python client) switch to exponents sooner.
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def prometheus_increase(times: np.ndarray, values: np.ndarray, at: float, window: float) -> float | None:
    """What Prometheus 2.x answers for ``increase(x[window])`` evaluated at ``at``.

    ``times`` (unix seconds, ascending) and ``values`` are the samples of one counter series
    without resets. Prometheus 2.x takes the samples in the closed range ``[at - window, at]``,
    and extrapolates the raw increase towards the range's ends when the first/last sample lies
    within 1.1 average sample intervals of them (else by half an interval), never below zero.
    Returns None where Prometheus returns nothing (fewer than two samples).

    When ``at`` is a sample time and ``window`` a multiple of the step, the range starts and ends
    on samples, nothing is extrapolated, and the answer is the exact raw increase. Prometheus 3
    made ranges left-open, so there the same query drops the first sample and extrapolates.
    """
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    # Prometheus works in integer milliseconds; compare there so the range ends are exact.
    ms = np.rint(times * 1000).astype(np.int64)
    at_ms = round(at * 1000)
    start_ms = at_ms - round(window * 1000)
    lo, hi = np.searchsorted(ms, start_ms, "left"), np.searchsorted(ms, at_ms, "right")
    if hi - lo < 2:
        return None
    first_t, last_t = ms[lo] / 1000, ms[hi - 1] / 1000
    first_v, last_v = float(values[lo]), float(values[hi - 1])
    result = last_v - first_v
    duration_to_start = first_t - start_ms / 1000
    duration_to_end = at_ms / 1000 - last_t
    sampled = last_t - first_t
    average = sampled / (hi - lo - 1)
    if result > 0 and first_v >= 0:
        duration_to_zero = sampled * (first_v / result)
        duration_to_start = min(duration_to_start, duration_to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else average / 2
    interval += duration_to_end if duration_to_end < threshold else average / 2
    return result * (interval / sampled)


@dataclass
class _Row:
    """One Prometheus series: its sample name, full labels and one value per sample time."""

    name: str
    labels: dict[str, str]
    values: np.ndarray
    first: int  # index of the series' first sample; nothing is written before it


@dataclass
class _Family:
    """An OpenMetrics metric family: groups of rows written together, one group per metric."""

    name: str
    type: str
    groups: list[list[_Row]]


class MetricsHistory:
    """Metric series sampled every ``step`` from ``start`` to ``end``, seeded by ``seed``.

    Add series with :meth:`counter`, :meth:`histogram`, :meth:`categorical`,
    :meth:`feedback` and :meth:`gauge`; read the exact values back with :meth:`values`,
    :meth:`value`, :meth:`increase` and :meth:`select`; write them with
    :meth:`write_openmetrics`. Times are timezone-aware datetimes.
    """

    def __init__(self, start: datetime, end: datetime, step: timedelta, seed: int = 0) -> None:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware, e.g. datetime.now(timezone.utc)")
        if step <= timedelta(0) or step % _MS:
            raise ValueError(f"step must be a positive whole number of milliseconds, not {step}")
        if (start - _EPOCH) % _MS:
            raise ValueError(f"start must be a whole millisecond, not {start}")
        if end < start + step:
            raise ValueError(f"end {end} must be at least one step ({step}) after start {start}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {seed}")
        self.seed = seed
        self.step = step
        count = (end - start) // step + 1
        start = start.astimezone(UTC)
        self.times: tuple[datetime, ...] = tuple(start + i * step for i in range(count))
        start_ms = (start - _EPOCH) // _MS
        self._ms = start_ms + (step // _MS) * np.arange(count, dtype=np.int64)
        self._families: dict[str, _Family] = {}
        self._rows: dict[tuple[str, frozenset[tuple[str, str]]], _Row] = {}

    # -- time -------------------------------------------------------------------------------

    @property
    def start(self) -> datetime:
        """The first sample time."""
        return self.times[0]

    @property
    def end(self) -> datetime:
        """The last sample time (``end`` rounded down to a whole step)."""
        return self.times[-1]

    @property
    def timestamps(self) -> np.ndarray:
        """Sample times in unix seconds, one per value of every series."""
        return self._ms / 1000

    def index(self, at: datetime) -> int:
        """Index of the last sample at or before ``at``."""
        if at.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        at_ms = (at - _EPOCH) // _MS
        i = int(np.searchsorted(self._ms, at_ms, side="right")) - 1
        if i < 0:
            raise ValueError(f"{at} is before the history's start {self.start}")
        return i

    # -- series -----------------------------------------------------------------------------

    def counter(self, name: str, labels: Mapping[str, str], rate: Rate) -> None:
        """A counter (``name`` with or without ``_total``) of Poisson(rate * step) per step."""
        family = _counter_family(name)
        rng = self._rng(family, labels)
        draws = rng.poisson(self._expected_events(rate))
        self._add(family, "counter", [(f"{family}_total", dict(labels), _cumulative(draws), 0)])

    def histogram(
        self,
        name: str,
        labels: Mapping[str, str],
        buckets: Sequence[float],
        rate: Rate,
        distribution: Distribution | Callable[[datetime], Distribution],
        *,
        signed_sums: str | None = None,
    ) -> None:
        """A classic histogram: Poisson(rate * step) observations per step spread over the
        buckets by a multinomial draw with the distribution's bucket probabilities.

        Writes cumulative ``_bucket`` series for each bound and ``+Inf``, ``_count`` and
        ``_sum``. ``distribution`` is a frozen distribution or a function of time returning one
        (returning the same object for a stretch of time is cheap: its probabilities are
        computed once). ``_sum`` adds, per bucket, the count times a representative value (the
        conditional median with ``ppf``, else the midpoint), so ``_sum / _count`` tracks the mean.
        With ``signed_sums``, the same contributions also go to that counter family by sign
        (label ``sign``: ``positive``/``negative``, as magnitudes), as ``modelpilot.instrument``
        exports them.
        """
        _check_labels(labels, reserved=("le",))
        bounds = np.array(sorted(float(b) for b in buckets if float(b) != math.inf))
        if len(bounds) == 0 or not np.all(np.isfinite(bounds)) or np.any(np.diff(bounds) <= 0):
            raise ValueError(f"buckets must be distinct finite numbers, not {list(buckets)}")
        rng = self._rng(name, labels)
        totals = rng.poisson(self._expected_events(rate))
        probabilities, representatives = self._bucket_shapes(distribution, bounds)
        counts = rng.multinomial(totals, probabilities)  # (intervals, buckets incl. +Inf)
        cumulative = _cumulative(np.cumsum(counts, axis=1))  # over buckets, then over time
        sums = _cumulative((counts * representatives).sum(axis=1))
        base = dict(labels)
        rows = [
            (f"{name}_bucket", {**base, "le": format_le(bound)}, cumulative[:, j], 0)
            for j, bound in enumerate([*bounds, math.inf])
        ]
        rows.append((f"{name}_count", base, cumulative[:, -1], 0))
        rows.append((f"{name}_sum", base, sums, 0))
        self._add(name, "histogram", rows)
        if signed_sums is not None:
            contributions = counts * representatives
            family = _counter_family(signed_sums)
            self._add(
                family,
                "counter",
                [
                    (
                        f"{family}_total",
                        {**base, "sign": "positive"},
                        _cumulative(np.clip(contributions, 0, None).sum(axis=1)),
                        0,
                    ),
                    (
                        f"{family}_total",
                        {**base, "sign": "negative"},
                        _cumulative(np.clip(-contributions, 0, None).sum(axis=1)),
                        0,
                    ),
                ],
            )

    def categorical(
        self,
        name: str,
        labels: Mapping[str, str],
        label_name: str | Sequence[str],
        rate: Rate,
        probabilities: Weights,
    ) -> None:
        """A counter split by ``label_name``: Poisson(rate * step) events per step spread over
        the categories by a multinomial draw with ``probabilities`` (weights, normalised).

        ``label_name`` may be a tuple of names; the categories are then tuples of values. A
        category's series starts (at 0) at the first interval whose weights name it, so a
        category that appears on day 40 has no series before day 40, as with a real client.
        """
        family = _counter_family(name)
        names = (label_name,) if isinstance(label_name, str) else tuple(label_name)
        _check_labels(labels, reserved=names)
        for label in names:
            _check_label_name(label)
        weights, categories, firsts = self._weights(probabilities, len(names))
        rng = self._rng(family, labels)
        totals = rng.poisson(self._expected_events(rate))
        counts = rng.multinomial(totals, weights)
        values = _cumulative(counts)
        rows = []
        for j, category in enumerate(categories):
            values_of = dict(zip(names, (str(v) for v in category)))
            rows.append((f"{family}_total", {**labels, **values_of}, values[:, j], firsts[j]))
        self._add(family, "counter", rows)

    def feedback(
        self,
        name: str,
        labels: Mapping[str, str],
        classes: Sequence[str],
        rate: Rate,
        class_probs: Weights | Sequence[float],
        accuracy: float | Mapping[str, float] | Callable[[datetime], float | Mapping[str, float]],
        *,
        predicted_label: str = "predicted",
        actual_label: str = "actual",
    ) -> None:
        """The confusion-matrix counter ``{predicted, actual}`` of late ground truth.

        Per step, Poisson(rate * step) labelled examples; the actual class follows
        ``class_probs`` (weights per class, or a sequence aligned with ``classes``); an example
        of actual class ``a`` is predicted right with probability ``accuracy`` (one number, or
        per actual class: the recall of that class), its errors spread evenly over the other
        classes. Both may be functions of time. All ``len(classes) ** 2`` series are written.
        """
        classes = [str(c) for c in classes]
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"feedback needs two or more distinct classes, not {classes}")

        def joint(t: datetime) -> dict[tuple[str, str], float]:
            prior = _class_weights(_at(class_probs, t), classes)
            recall = _class_accuracy(_at(accuracy, t), classes)
            other = len(classes) - 1
            return {
                (predicted, actual): prior[actual] * (recall[actual] if predicted == actual else (1 - recall[actual]) / other)
                for actual in classes
                for predicted in classes
            }

        constant = not callable(class_probs) and not callable(accuracy)
        probabilities: Weights = joint(self.start) if constant else joint
        self.categorical(name, labels, (predicted_label, actual_label), rate, probabilities)

    def gauge(self, name: str, labels: Mapping[str, str], value: float | Callable[[datetime], float]) -> None:
        """A gauge: ``value`` at every sample time (no noise: the value is the function's)."""
        values = np.array([float(_at(value, t)) for t in self.times], dtype=np.float64)
        self._add(name, "gauge", [(name, dict(labels), values, 0)])

    # -- reading back -----------------------------------------------------------------------

    def values(self, name: str, labels: Mapping[str, str]) -> np.ndarray:
        """All values of one series (sample name and full labels, ``le`` included), one per
        sample time; 0 before the series starts. Read-only."""
        row = self._rows.get((name, _label_key(labels)))
        if row is None:
            raise KeyError(f"no series {name}{dict(labels)} in this history")
        return row.values

    def value(self, name: str, labels: Mapping[str, str], at: datetime) -> float:
        """The series' value at the last sample at or before ``at``."""
        return float(self.values(name, labels)[self.index(at)])

    def increase(self, name: str, labels: Mapping[str, str], since: datetime, until: datetime) -> float:
        """The exact increase from ``since`` to ``until`` (each at its last sample at or before):
        the sum of the draws of the intervals in between, with no extrapolation."""
        values = self.values(name, labels)
        return float(values[self.index(until)] - values[self.index(since)])

    def prometheus_increase(self, name: str, labels: Mapping[str, str], at: datetime, window: timedelta) -> float | None:
        """What Prometheus 2.x answers for ``increase(name{labels}[window])`` at ``at``
        (see the module function :func:`prometheus_increase`)."""
        row = self._rows.get((name, _label_key(labels)))
        if row is None:
            raise KeyError(f"no series {name}{dict(labels)} in this history")
        return prometheus_increase(
            self.timestamps[row.first :],
            row.values[row.first :],
            (at - _EPOCH) / timedelta(seconds=1),
            window / timedelta(seconds=1),
        )

    def select(self, name: str, matchers: Mapping[str, str] | None = None) -> list[tuple[dict[str, str], np.ndarray]]:
        """Every series named ``name`` whose labels include ``matchers``: (labels, values)."""
        wanted = dict(matchers or {}).items()
        return [
            (dict(row.labels), row.values)
            for (row_name, _), row in self._rows.items()
            if row_name == name and wanted <= row.labels.items()
        ]

    # -- writing ----------------------------------------------------------------------------

    def write_openmetrics(self, path: str | Path) -> int:
        """Write every series as OpenMetrics text for ``promtool tsdb create-blocks-from
        openmetrics`` and return the number of samples written.

        Families follow in the order they were first added, each with its ``# TYPE`` line;
        within a family, each metric's samples are contiguous and in time order (OpenMetrics
        requires the grouping, promtool the time order per series), with a histogram's
        buckets, ``_count`` and ``_sum`` together per timestamp. Timestamps are in seconds.
        Streams family by family, so memory stays at one metric's text.
        """
        stamps = _timestamp_strings(self._ms)
        samples = 0
        with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
            for family in self._families.values():
                out.write(f"# TYPE {family.name} {family.type}\n")
                for group in family.groups:
                    first = group[0].first
                    columns = [_lines(_series_prefix(row), row.values[first:], stamps[first:]) for row in group]
                    out.write("".join(itertools.chain.from_iterable(zip(*columns))))
                    samples += len(group) * (len(stamps) - first)
            out.write("# EOF\n")
        return samples

    # -- internals --------------------------------------------------------------------------

    def _rng(self, family: str, labels: Mapping[str, str]) -> np.random.Generator:
        key = "\x00".join([family, *(f"{k}={v}" for k, v in sorted(labels.items()))])
        return np.random.default_rng([self.seed, zlib.crc32(key.encode())])

    def _expected_events(self, rate: Rate) -> np.ndarray:
        """Expected events per interval, from the rate at each interval's start."""
        seconds = self.step / timedelta(seconds=1)
        if callable(rate):
            rates = np.array([float(rate(t)) for t in self.times[:-1]], dtype=np.float64)
        else:
            rates = np.full(len(self.times) - 1, float(rate))
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError("rate must be a finite, non-negative number of events per second")
        return rates * seconds

    def _bucket_shapes(
        self, distribution: Distribution | Callable[[datetime], Distribution], bounds: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per interval, each bucket's probability and representative value."""
        if hasattr(distribution, "cdf"):
            probabilities, representatives = _bucket_shape(distribution, bounds)
            intervals = len(self.times) - 1
            return np.tile(probabilities, (intervals, 1)), np.tile(representatives, (intervals, 1))
        # Keyed by id() while the objects are held in `seen`, so ids cannot be reused.
        seen: dict[int, tuple[Any, tuple[np.ndarray, np.ndarray]]] = {}
        shapes = []
        for t in self.times[:-1]:
            current = distribution(t)
            if id(current) not in seen:
                seen[id(current)] = (current, _bucket_shape(current, bounds))
            shapes.append(seen[id(current)][1])
        return np.array([p for p, _ in shapes]), np.array([r for _, r in shapes])

    def _weights(self, probabilities: Weights, arity: int) -> tuple[np.ndarray, list[tuple[Any, ...]], list[int]]:
        """Normalised weights per interval and category, the categories in first-seen order,
        and the index of each category's first sample."""
        intervals = len(self.times) - 1
        if callable(probabilities):
            per_interval = [probabilities(t) for t in self.times[:-1]]
        else:
            per_interval = [probabilities]
        categories: dict[tuple[Any, ...], int] = {}
        for i, mapping in enumerate(per_interval):
            for key in mapping:
                categories.setdefault(_category(key, arity), i)
        if not categories:
            raise ValueError("probabilities name no category")
        columns = {key: j for j, key in enumerate(categories)}
        weights = np.zeros((len(per_interval), len(columns)))
        for i, mapping in enumerate(per_interval):
            for key, weight in mapping.items():
                weights[i, columns[_category(key, arity)]] = float(weight)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("probabilities must be finite and non-negative")
        sums = weights.sum(axis=1, keepdims=True)
        if np.any(sums <= 0):
            at = self.times[int(np.argmax(sums[:, 0] <= 0))]
            raise ValueError(f"probabilities sum to 0 at {at}")
        weights = weights / sums
        if len(per_interval) == 1:
            weights = np.tile(weights, (intervals, 1))
        return weights, list(categories), list(categories.values())

    def _add(self, family: str, kind: str, rows: list[tuple[str, dict[str, str], np.ndarray, int]]) -> None:
        """Register one metric (a group of rows written together) of ``family``."""
        if not _METRIC_NAME.match(family):
            raise ValueError(f"invalid metric name {family!r}")
        existing = self._families.get(family)
        if existing is not None and existing.type != kind:
            raise ValueError(f"{family} is already a {existing.type}, not a {kind}")
        for name, labels, _, _ in rows:
            _check_labels(labels)
            if (name, _label_key(labels)) in self._rows:
                raise ValueError(f"series {name}{labels} is defined twice")
        # Each category of a categorical counter is a metric of its own; a histogram's rows
        # (buckets, count, sum) are one metric.
        if kind == "histogram":
            groups = [rows]
        else:
            groups = [[row] for row in rows]
        target = existing or _Family(family, kind, [])
        for group in groups:
            made = []
            for name, labels, values, first in group:
                values = np.asarray(values)
                values.setflags(write=False)
                row = _Row(name, labels, values, first)
                self._rows[(name, _label_key(labels))] = row
                made.append(row)
            target.groups.append(made)
        self._families[family] = target


def _counter_family(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


def _check_label_name(name: str) -> None:
    if not _LABEL_NAME.match(name) or name.startswith("__"):
        raise ValueError(f"invalid label name {name!r}")


def _check_labels(labels: Mapping[str, str], reserved: Sequence[str] = ()) -> None:
    for name, value in labels.items():
        _check_label_name(name)
        if name in reserved:
            raise ValueError(f"label {name!r} is set by the series itself")
        if not isinstance(value, str):
            raise ValueError(f"label {name}={value!r} must be a string")


def _label_key(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def _category(key: Any, arity: int) -> tuple[Any, ...]:
    if arity == 1:
        return (key,)
    if not isinstance(key, tuple) or len(key) != arity:
        raise ValueError(f"category {key!r} must be a tuple of {arity} label values")
    return key


def _at(value: Any, t: datetime) -> Any:
    return value(t) if callable(value) else value


def _class_weights(weights: Any, classes: Sequence[str]) -> dict[str, float]:
    if isinstance(weights, Mapping):
        unknown = set(map(str, weights)) - set(classes)
        if unknown:
            raise ValueError(f"class_probs names unknown classes {sorted(unknown)}")
        values = {c: float(weights.get(c, 0.0)) for c in classes}
    else:
        values = dict(zip(classes, map(float, weights), strict=True))
    total = sum(values.values())
    if total <= 0 or any(v < 0 for v in values.values()):
        raise ValueError(f"class_probs must be non-negative with a positive sum, not {values}")
    return {c: v / total for c, v in values.items()}


def _class_accuracy(accuracy: Any, classes: Sequence[str]) -> dict[str, float]:
    values = (
        {c: float(accuracy[c]) for c in classes} if isinstance(accuracy, Mapping) else dict.fromkeys(classes, float(accuracy))
    )
    if any(not 0 <= v <= 1 for v in values.values()):
        raise ValueError(f"accuracy must lie in [0, 1], not {values}")
    return values


def _bucket_shape(distribution: Distribution, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bucket probabilities (last: above the highest bound) and representative values."""
    cdf = np.clip(np.asarray(distribution.cdf(bounds), dtype=np.float64), 0.0, 1.0)
    if cdf.shape != bounds.shape or not np.all(np.isfinite(cdf)):
        raise ValueError(f"distribution.cdf gave {cdf} at the bucket bounds")
    edges = np.concatenate([[0.0], np.maximum.accumulate(cdf), [1.0]])
    probabilities = np.diff(edges)
    probabilities /= probabilities.sum()
    lower = np.concatenate([[-math.inf], bounds])
    upper = np.concatenate([bounds, [math.inf]])
    # Midpoints, with the open-ended buckets half a neighbouring width beyond their bound.
    width_low = bounds[1] - bounds[0] if len(bounds) > 1 else 0.0
    width_high = bounds[-1] - bounds[-2] if len(bounds) > 1 else 0.0
    fallback = (np.concatenate([[bounds[0] - width_low], bounds]) +
                np.concatenate([bounds, [bounds[-1] + width_high]])) / 2  # fmt: skip
    representatives = fallback
    if hasattr(distribution, "ppf"):
        with np.errstate(all="ignore"):
            medians = np.asarray(distribution.ppf((edges[:-1] + edges[1:]) / 2), dtype=np.float64)
        usable = np.isfinite(medians) & (probabilities > 0)
        representatives = np.where(usable, np.clip(medians, lower, upper), fallback)
    return probabilities, representatives


def _cumulative(draws: np.ndarray) -> np.ndarray:
    """Counter values from per-interval draws: 0 at the first sample, then running sums."""
    zero = np.zeros((1, *draws.shape[1:]), dtype=draws.dtype)
    return np.cumsum(np.concatenate([zero, draws]), axis=0)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _series_prefix(row: _Row) -> str:
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in row.labels.items())
    return f"{row.name}{{{labels}}} " if labels else f"{row.name} "


def _timestamp_strings(ms: np.ndarray) -> list[str]:
    if np.all(ms % 1000 == 0):
        return [str(v) for v in (ms // 1000).tolist()]
    return [f"{v // 1000}.{v % 1000:03d}" for v in ms.tolist()]


def _value_strings(values: np.ndarray) -> list[str]:
    if np.issubdtype(values.dtype, np.integer):
        return list(map(str, values.tolist()))
    # repr is the shortest text that reads back to the same float64: the sums stay exact.
    text = list(map(repr, values.tolist()))
    if not np.all(np.isfinite(values)):
        text = [format_le(v) if not math.isfinite(v) else s for v, s in zip(values, text)]
    return text


def _lines(prefix: str, values: np.ndarray, stamps: Sequence[str]) -> Iterator[str]:
    return (f"{prefix}{v} {t}\n" for v, t in zip(_value_strings(values), stamps))
