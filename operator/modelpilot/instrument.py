"""Metrics a model server exports for modelpilot: the ``generic`` preset of the data contract.

A model server creates one :class:`ModelMetrics` for the model version it serves, records each
request, prediction, feature row and late ground-truth label through it, and serves the
Prometheus exposition (:meth:`ModelMetrics.wsgi_app`, :meth:`ModelMetrics.start_http_server`
or :meth:`ModelMetrics.render`). Needs only ``prometheus_client``; imports nothing else of
modelpilot, so it can ship inside a model server image on its own.

The series, all labelled ``model`` and ``version``:

| metric | type | extra labels |
| --- | --- | --- |
| ``model_request_duration_seconds`` | histogram | |
| ``model_requests_total`` | counter | status (``success``/``error``) |
| ``model_predictions_total`` | counter | class |
| ``model_feedback_total`` | counter | predicted, actual, group (``""`` when unused) |
| ``model_feature_value`` | histogram, bounds per feature | feature |
| ``model_feature_category_total`` | counter | feature, category |
| ``model_feature_missing_total`` | counter | feature |
| ``model_feature_sum_total`` | counter | feature, sign (``positive``/``negative``) |
| ``model_batch_size`` | histogram | |

Feature values: ``int``/``float`` go to the ``model_feature_value`` histogram, ``str`` and
``bool`` (as ``"true"``/``"false"``) to ``model_feature_category_total``. ``None``, NaN and
±inf are *missing*: they are counted only in ``model_feature_missing_total``, never as a
category, because a numerical feature that also appeared in the category counter would look
categorical to the drift checks. For the same reason a feature must keep one kind.

A feature whose bounds include a negative one has no ``_sum`` and ``_count`` series: OpenMetrics
forbids a histogram sum that can decrease (prometheus_client follows it); its ``le="+Inf"``
bucket is the count, and drift needs only the buckets. So each numerical feature's values are
also summed in ``model_feature_sum_total``, by sign, as magnitudes: two counters that never fall,
whose ``increase()`` over a window gives the window's mean as (positive - negative) / count.

``group`` is always present on ``model_feedback_total`` (Prometheus treats an empty label as
absent), so the label set never changes when a server starts passing groups for fairness
checks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from numbers import Real
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "DEFAULT_BATCH_BUCKETS",
    "DEFAULT_FEATURE_BUCKETS",
    "DEFAULT_LATENCY_BUCKETS",
    "ModelMetrics",
    "RequestTracker",
    "buckets_from_sample",
]

DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds, 1 ms to 10 s, dense around the 50-300 ms where latency objectives usually sit."""

DEFAULT_FEATURE_BUCKETS: tuple[float, ...] = (
    -100.0,
    -10.0,
    -5.0,
    -2.0,
    -1.0,
    -0.5,
    0.0,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    100.0,
    1000.0,
    10000.0,
)
"""Coarse, scale-free bounds for features without their own. Drift tests can only see shifts
between bucket edges, so give each numerical feature bounds from its training data (for
example ``buckets_from_sample(training_column)``)."""

DEFAULT_BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
"""Instances per request."""

_MISSING = object()


def _check_bounds(bounds: Iterable[float], what: str) -> tuple[float, ...]:
    values = tuple(float(b) for b in bounds)
    finite = tuple(b for b in values if b != math.inf)
    if not finite:
        raise ValueError(f"{what}: give at least one finite bucket bound")
    if any(math.isnan(b) or b == -math.inf for b in finite):
        raise ValueError(f"{what}: bucket bounds must be numbers below +Inf, not {values}")
    if any(a >= b for a, b in zip(finite, finite[1:])):
        raise ValueError(f"{what}: bucket bounds must be strictly increasing, not {values}")
    return finite


def buckets_from_sample(values: Iterable[float | None], count: int = 10) -> tuple[float, ...]:
    """Bucket bounds at the ``count``-quantiles of a sample (a training column), deduplicated.

    Equal-frequency buckets make the drift tests equally sensitive over the whole range.
    Non-finite values and ``None`` are ignored.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    data = sorted(float(v) for v in values if v is not None and math.isfinite(float(v)))
    if not data:
        raise ValueError("buckets_from_sample needs at least one finite value")
    bounds: list[float] = []
    for i in range(1, count + 1):
        bound = data[min(len(data) - 1, math.ceil(i * len(data) / count) - 1)]
        if not bounds or bound > bounds[-1]:
            bounds.append(bound)
    return tuple(bounds)


class _FeatureHistograms(Collector):
    """``model_feature_value``: one histogram family whose bucket bounds differ per feature.

    prometheus_client's ``Histogram`` shares one set of bounds across all its label values, so
    the per-feature bounds need a collector of their own.
    """

    name = "model_feature_value"
    documentation = "Numerical feature values seen in prediction requests."

    def __init__(
        self,
        model: str,
        version: str,
        buckets: Mapping[str, Sequence[float]],
        default: Sequence[float],
    ) -> None:
        self._labels = (model, version)
        self._bounds = {str(f): _check_bounds(b, f"feature_buckets[{f!r}]") for f, b in buckets.items()}
        self._default = _check_bounds(default, "default feature buckets")
        self._lock = threading.Lock()
        # feature -> (per-bucket counts with a last +Inf bucket, sum); declared features start
        # at zero so the first increase() after a restart is not lost.
        self._series: dict[str, tuple[list[float], list[float]]] = {
            f: ([0.0] * (len(b) + 1), [0.0]) for f, b in self._bounds.items()
        }

    def bounds(self, feature: str) -> tuple[float, ...]:
        return self._bounds.get(feature, self._default)

    def observe(self, feature: str, value: float) -> None:
        bounds = self.bounds(feature)
        index = next((i for i, b in enumerate(bounds) if value <= b), len(bounds))
        with self._lock:
            counts, total = self._series.setdefault(feature, ([0.0] * (len(bounds) + 1), [0.0]))
            counts[index] += 1
            total[0] += value

    def describe(self) -> Iterable[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=["model", "version", "feature"])

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["model", "version", "feature"])
        with self._lock:
            snapshot = {f: (list(c), t[0]) for f, (c, t) in self._series.items()}
        for feature in sorted(snapshot):
            counts, total = snapshot[feature]
            edges = [*self.bounds(feature), math.inf]
            cumulative, running = [], 0.0
            for edge, count in zip(edges, counts):
                running += count
                cumulative.append((floatToGoString(edge), running))
            family.add_metric([*self._labels, feature], cumulative, sum_value=total)
        yield family


class RequestTracker:
    """What :meth:`ModelMetrics.track` yields: call :meth:`fail` to count a request that
    raised nothing as an error (for example one answered with HTTP 500)."""

    def __init__(self) -> None:
        self.ok = True

    def fail(self) -> None:
        self.ok = False


class ModelMetrics:
    """The ``generic`` metrics of one model version, in their own registry.

    ``registry`` defaults to a new ``CollectorRegistry`` (not the process-wide default one);
    one registry holds one ``ModelMetrics``. ``feature_buckets`` maps a numerical feature to its
    bucket bounds (``+Inf`` is added); other features use ``DEFAULT_FEATURE_BUCKETS``.
    ``classes`` and ``feature_categories`` (feature -> known categories), when given, create
    the prediction, feedback and category series at zero right away, so Prometheus sees every
    counter before its first increment (``increase()`` misses a series' first value).
    """

    def __init__(
        self,
        model: str,
        version: str | int,
        *,
        registry: CollectorRegistry | None = None,
        feature_buckets: Mapping[str, Sequence[float]] | None = None,
        latency_buckets: Sequence[float] | None = None,
        batch_buckets: Sequence[float] | None = None,
        default_feature_buckets: Sequence[float] = DEFAULT_FEATURE_BUCKETS,
        classes: Sequence[str] = (),
        feature_categories: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if not model:
            raise ValueError("model must be a non-empty model name")
        self.model = str(model)
        self.version = str(version)
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("model", "version")
        mv = (self.model, self.version)
        latency = _check_bounds(latency_buckets or DEFAULT_LATENCY_BUCKETS, "latency_buckets")
        batch = _check_bounds(batch_buckets or DEFAULT_BATCH_BUCKETS, "batch_buckets")
        # Validated before anything is registered, so a bad bound leaves the registry as it was.
        self._features = _FeatureHistograms(self.model, self.version, feature_buckets or {}, default_feature_buckets)
        reg = self.registry

        self._duration = Histogram(
            "model_request_duration_seconds",
            "Time to answer a prediction request.",
            labels,
            buckets=latency,
            registry=reg,
        ).labels(*mv)
        self._requests = Counter("model_requests_total", "Prediction requests by outcome.", (*labels, "status"), registry=reg)
        self._success = self._requests.labels(*mv, "success")
        self._error = self._requests.labels(*mv, "error")
        self._predictions = Counter("model_predictions_total", "Predicted classes.", (*labels, "class"), registry=reg)
        self._feedback = Counter(
            "model_feedback_total",
            "Ground truth that arrived for earlier predictions.",
            (*labels, "predicted", "actual", "group"),
            registry=reg,
        )
        self._categories = Counter(
            "model_feature_category_total",
            "Categorical feature values seen in prediction requests.",
            (*labels, "feature", "category"),
            registry=reg,
        )
        self._missing = Counter(
            "model_feature_missing_total",
            "Feature values that were None, NaN or infinite.",
            (*labels, "feature"),
            registry=reg,
        )
        self._sums = Counter(
            "model_feature_sum_total",
            "Magnitudes of numerical feature values, summed by sign: the mean is (positive - negative) / count.",
            (*labels, "feature", "sign"),
            registry=reg,
        )
        self._batch = Histogram(
            "model_batch_size", "Instances per prediction request.", labels, buckets=batch, registry=reg
        ).labels(*mv)
        reg.register(self._features)

        for cls in classes:
            self._predictions.labels(*mv, str(cls))
            for actual in classes:
                self._feedback.labels(*mv, str(cls), str(actual), "")
        for feature, categories in (feature_categories or {}).items():
            for category in categories:
                self._categories.labels(*mv, str(feature), str(category))

    # -- requests ---------------------------------------------------------------------------

    def observe_request(self, duration_s: float, ok: bool) -> None:
        """One request that took ``duration_s`` seconds and succeeded (``ok``) or failed."""
        self._duration.observe(duration_s)
        (self._success if ok else self._error).inc()

    @contextmanager
    def track(self) -> Iterator[RequestTracker]:
        """Time the block as one request; an exception (re-raised) or ``fail()`` makes it an error."""
        tracker = RequestTracker()
        start = time.perf_counter()
        try:
            yield tracker
        except BaseException:
            tracker.ok = False
            raise
        finally:
            self.observe_request(time.perf_counter() - start, tracker.ok)

    def observe_batch(self, size: int) -> None:
        """The number of instances in one request."""
        self._batch.observe(size)

    # -- model inputs and outputs -----------------------------------------------------------

    def observe_prediction(self, cls: str, count: int = 1) -> None:
        """``count`` predictions of class ``cls``."""
        self._predictions.labels(self.model, self.version, str(cls)).inc(count)

    def observe_features(self, row: Mapping[str, Any]) -> None:
        """One input row: numbers to the histogram, strings and bools to the category counter,
        ``None``/NaN/±inf to the missing counter. Other types raise ``TypeError``."""
        for feature, value in row.items():
            kind = _kind(value)
            if kind is _MISSING:
                self._missing.labels(self.model, self.version, str(feature)).inc()
            elif kind is str:
                self._categories.labels(self.model, self.version, str(feature), _category(value)).inc()
            elif kind is float:
                self._features.observe(str(feature), float(value))
                self._observe_sum(str(feature), float(value))
            else:
                raise TypeError(f"feature {feature!r}: expected a number, a string, a bool or None, not {type(value).__name__}")

    def _observe_sum(self, feature: str, value: float) -> None:
        positive = self._sums.labels(self.model, self.version, feature, "positive")
        negative = self._sums.labels(self.model, self.version, feature, "negative")
        # Both series exist from a feature's first value, so increase() sees every later change.
        (positive if value >= 0 else negative).inc(abs(value))

    def observe_feedback(self, predicted: str, actual: str, group: str = "") -> None:
        """Ground truth ``actual`` for an earlier prediction ``predicted``, optionally in a
        ``group`` (a population segment for fairness checks)."""
        self._feedback.labels(self.model, self.version, str(predicted), str(actual), str(group)).inc()

    def feature_bounds(self, feature: str) -> tuple[float, ...]:
        """The finite bucket bounds ``model_feature_value`` uses for ``feature``."""
        return self._features.bounds(feature)

    # -- exposition -------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition and its content type, in the format a scraper's ``Accept`` header
        asks for (OpenMetrics or the Prometheus text format 0.0.4, the default)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def wsgi_app(self) -> Callable[..., Any]:
        """A WSGI app serving this registry, to mount at ``/metrics``."""
        return make_wsgi_app(self.registry)

    def start_http_server(self, port: int, addr: str = "0.0.0.0") -> Any:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns (server, thread)."""
        return _start_http_server(port, addr=addr, registry=self.registry)


def _kind(value: Any) -> object:
    if value is None:
        return _MISSING
    if isinstance(value, (str, bool)) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return str
    if isinstance(value, Real):
        return float if math.isfinite(float(value)) else _MISSING
    return None


def _category(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "true" if value else "false"  # bool, numpy.bool_
