"""modelpilot.instrument emits the generic preset of the data contract, exactly."""

from __future__ import annotations

import ast
import math
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import modelpilot.instrument as instrument
from modelpilot.instrument import (
    DEFAULT_FEATURE_BUCKETS,
    DEFAULT_LATENCY_BUCKETS,
    ModelMetrics,
    buckets_from_sample,
)

MV = {"model": "fraud-detector", "version": "3"}


def scrape(metrics: ModelMetrics) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    """family name -> (type, [(sample name, labels, value)]), parsed from the text exposition."""
    body, _ = metrics.render()
    return {
        family.name: (family.type, [(s.name, dict(s.labels), s.value) for s in family.samples])
        for family in text_string_to_metric_families(body.decode())
    }


def samples(metrics: ModelMetrics, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called ``name`` (e.g. ``model_requests_total``)."""
    return [(labels, value) for _, (_, rows) in scrape(metrics).items() for n, labels, value in rows if n == name]


def value(metrics: ModelMetrics, name: str, **labels: str) -> float | None:
    wanted = {**MV, **labels}
    found = [v for lab, v in samples(metrics, name) if lab == wanted]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.fixture
def metrics() -> ModelMetrics:
    return ModelMetrics("fraud-detector", 3, feature_buckets={"amount": [10, 100, 1000]})


def test_every_metric_has_the_contract_name_type_and_labels(metrics: ModelMetrics) -> None:
    with metrics.track():
        metrics.observe_features({"amount": 42.0, "merchant": "online"})
        metrics.observe_prediction("legit")
        metrics.observe_feedback("legit", "fraud")
        metrics.observe_batch(1)

    families = scrape(metrics)
    expected = {
        # family (as the parser names it): type, {sample name: label names}
        "model_request_duration_seconds": (
            "histogram",
            {
                "model_request_duration_seconds_bucket": {"model", "version", "le"},
                "model_request_duration_seconds_count": {"model", "version"},
                "model_request_duration_seconds_sum": {"model", "version"},
            },
        ),
        "model_requests": ("counter", {"model_requests_total": {"model", "version", "status"}}),
        "model_predictions": ("counter", {"model_predictions_total": {"model", "version", "class"}}),
        "model_feedback": (
            "counter",
            {
                "model_feedback_total": {"model", "version", "predicted", "actual", "group"},
            },
        ),
        "model_feature_value": (
            "histogram",
            {
                "model_feature_value_bucket": {"model", "version", "feature", "le"},
                "model_feature_value_count": {"model", "version", "feature"},
                "model_feature_value_sum": {"model", "version", "feature"},
            },
        ),
        "model_feature_category": (
            "counter",
            {
                "model_feature_category_total": {"model", "version", "feature", "category"},
            },
        ),
        "model_feature_sum": ("counter", {"model_feature_sum_total": {"model", "version", "feature", "sign"}}),
        "model_batch_size": (
            "histogram",
            {
                "model_batch_size_bucket": {"model", "version", "le"},
                "model_batch_size_count": {"model", "version"},
                "model_batch_size_sum": {"model", "version"},
            },
        ),
    }
    for family, (kind, by_sample) in expected.items():
        assert family in families, f"{family} missing from {sorted(families)}"
        actual_kind, rows = families[family]
        assert actual_kind == kind, family
        # _created samples (prometheus_client's counter start times) are not part of the contract
        seen = {(name, frozenset(labels)) for name, labels, _ in rows if not name.endswith("_created")}
        assert seen == {(name, frozenset(labels)) for name, labels in by_sample.items()}, family
        for _, labels, _ in rows:
            assert {k: labels[k] for k in MV} == MV
    contract = set(expected) | {"model_feature_missing"}
    extra = {f for f in families if f not in contract and not f.endswith("_created")}
    assert not extra


def test_request_outcomes_are_success_and_error_both_present_from_the_start(metrics: ModelMetrics) -> None:
    statuses = {labels["status"]: v for labels, v in samples(metrics, "model_requests_total")}
    assert statuses == {"success": 0.0, "error": 0.0}


def test_track_times_requests_and_counts_exceptions_as_errors(metrics: ModelMetrics) -> None:
    with metrics.track():
        pass
    with pytest.raises(RuntimeError, match="model crashed"):
        with metrics.track():
            raise RuntimeError("model crashed")
    with metrics.track() as request:
        request.fail()  # an answer like HTTP 500, without an exception

    assert value(metrics, "model_requests_total", status="success") == 1
    assert value(metrics, "model_requests_total", status="error") == 2
    assert value(metrics, "model_request_duration_seconds_count") == 3
    duration_sum = value(metrics, "model_request_duration_seconds_sum")
    assert duration_sum is not None and 0 <= duration_sum < 1


def test_observe_request_puts_the_duration_in_its_latency_bucket(metrics: ModelMetrics) -> None:
    metrics.observe_request(0.2, ok=True)
    metrics.observe_request(3.0, ok=False)

    assert value(metrics, "model_request_duration_seconds_bucket", le="0.15") == 0
    assert value(metrics, "model_request_duration_seconds_bucket", le="0.2") == 1
    assert value(metrics, "model_request_duration_seconds_bucket", le="2.5") == 1
    assert value(metrics, "model_request_duration_seconds_bucket", le="5.0") == 2
    assert value(metrics, "model_request_duration_seconds_sum") == pytest.approx(3.2)
    les = [labels["le"] for labels, _ in samples(metrics, "model_request_duration_seconds_bucket")]
    assert [float(le) for le in les] == [*DEFAULT_LATENCY_BUCKETS, math.inf]


def test_custom_latency_buckets_replace_the_defaults() -> None:
    metrics = ModelMetrics("m", "1", latency_buckets=[0.01, 0.1, 1])
    metrics.observe_request(0.05, ok=True)
    buckets = {lab["le"]: v for lab, v in samples(metrics, "model_request_duration_seconds_bucket")}
    assert buckets == {"0.01": 0, "0.1": 1, "1.0": 1, "+Inf": 1}


def test_numbers_go_to_the_histogram_and_strings_and_bools_to_categories(metrics: ModelMetrics) -> None:
    metrics.observe_features({"amount": 42, "hour": 3.5, "merchant": "online", "weekend": True})
    metrics.observe_features({"amount": 420.0, "merchant": "online", "weekend": False})

    numeric = {lab["feature"]: v for lab, v in samples(metrics, "model_feature_value_bucket") if lab["le"] == "+Inf"}
    assert numeric == {"amount": 2, "hour": 1}
    categories = {(lab["feature"], lab["category"]): v for lab, v in samples(metrics, "model_feature_category_total")}
    assert categories == {("merchant", "online"): 2, ("weekend", "true"): 1, ("weekend", "false"): 1}
    assert value(metrics, "model_feature_value_count", feature="amount") == 2
    assert value(metrics, "model_feature_value_sum", feature="amount") == 462
    assert value(metrics, "model_feature_value_bucket", feature="amount", le="10.0") == 0
    assert value(metrics, "model_feature_value_bucket", feature="amount", le="100.0") == 1
    assert value(metrics, "model_feature_value_bucket", feature="amount", le="1000.0") == 2


def test_none_nan_and_infinity_are_missing_never_a_value_or_a_category(metrics: ModelMetrics) -> None:
    metrics.observe_features({"amount": None, "hour": math.nan, "distance": -math.inf, "merchant": None})

    assert value(metrics, "model_feature_value_count", feature="amount") == 0  # declared: at zero
    assert value(metrics, "model_feature_value_count", feature="hour") is None
    assert samples(metrics, "model_feature_category_total") == []
    missing = {lab["feature"]: v for lab, v in samples(metrics, "model_feature_missing_total")}
    assert missing == {"amount": 1, "hour": 1, "distance": 1, "merchant": 1}


def test_other_feature_types_are_refused(metrics: ModelMetrics) -> None:
    with pytest.raises(TypeError, match="feature 'tags'"):
        metrics.observe_features({"tags": ["a", "b"]})


def test_each_feature_has_its_own_bucket_bounds() -> None:
    metrics = ModelMetrics("m", "1", feature_buckets={"amount": [10, 100], "hour": (6, 12, 18)})
    metrics.observe_features({"amount": 5.0, "hour": 7, "other": 0.3})

    def bounds(feature: str) -> list[float]:
        return [float(lab["le"]) for lab, _ in samples(metrics, "model_feature_value_bucket") if lab["feature"] == feature]

    assert bounds("amount") == [10, 100, math.inf]
    assert bounds("hour") == [6, 12, 18, math.inf]
    assert bounds("other") == [*DEFAULT_FEATURE_BUCKETS, math.inf]
    assert metrics.feature_bounds("hour") == (6.0, 12.0, 18.0)
    assert metrics.feature_bounds("unknown") == DEFAULT_FEATURE_BUCKETS
    # cumulative counts, as Prometheus histograms are
    assert [v for lab, v in samples(metrics, "model_feature_value_bucket") if lab["feature"] == "hour"] == [0, 1, 1, 1]


def test_features_with_negative_bounds_have_no_sum_or_count() -> None:
    """OpenMetrics forbids a histogram sum that can decrease; the +Inf bucket is the count."""
    metrics = ModelMetrics("m", "1", feature_buckets={"score": [-1, 0, 1], "amount": [0, 10]})
    metrics.observe_features({"score": -3.0, "amount": 5.0})

    assert {lab["feature"] for lab, _ in samples(metrics, "model_feature_value_sum")} == {"amount"}
    assert {lab["feature"] for lab, _ in samples(metrics, "model_feature_value_count")} == {"amount"}
    score = {lab["le"]: v for lab, v in samples(metrics, "model_feature_value_bucket") if lab["feature"] == "score"}
    assert score == {"-1.0": 1, "0.0": 1, "1.0": 1, "+Inf": 1}


def test_every_feature_has_signed_sums_whose_difference_over_the_count_is_the_mean() -> None:
    metrics = ModelMetrics("m", "1", feature_buckets={"score": [-1, 0, 1]})
    values = [-3.0, 0.5, 2.25, -0.75, 4.0]
    for value in values:
        metrics.observe_features({"score": value, "note": None})
    sums = {lab["sign"]: v for lab, v in samples(metrics, "model_feature_sum_total") if lab["feature"] == "score"}
    assert sums == {"positive": 6.75, "negative": 3.75}
    count = next(v for lab, v in samples(metrics, "model_feature_value_bucket") if lab["le"] == "+Inf")
    assert (sums["positive"] - sums["negative"]) / count == pytest.approx(sum(values) / len(values))
    assert {lab["feature"] for lab, _ in samples(metrics, "model_feature_sum_total")} == {"score"}  # not missing ones


def test_declared_features_start_at_zero_so_their_first_increase_is_seen() -> None:
    metrics = ModelMetrics("m", "1", feature_buckets={"amount": [10, 100]})
    assert [v for _, v in samples(metrics, "model_feature_value_bucket")] == [0, 0, 0]


@pytest.mark.parametrize("bounds", [[], [math.inf], [1, 1], [2, 1], [math.nan], [-math.inf, 0]], ids=str)
def test_bad_bucket_bounds_are_refused(bounds: list[float]) -> None:
    with pytest.raises(ValueError, match="amount"):
        ModelMetrics("m", "1", feature_buckets={"amount": bounds})
    with pytest.raises(ValueError, match="latency_buckets"):
        ModelMetrics("m", "1", latency_buckets=bounds or [math.inf])


def test_feedback_keeps_one_label_set_with_an_empty_group_by_default(metrics: ModelMetrics) -> None:
    metrics.observe_feedback("legit", "fraud")
    metrics.observe_feedback("legit", "fraud", group="eu")

    feedback = {(lab["predicted"], lab["actual"], lab["group"]): v for lab, v in samples(metrics, "model_feedback_total")}
    assert feedback == {("legit", "fraud", ""): 1, ("legit", "fraud", "eu"): 1}


def test_known_classes_and_categories_create_their_series_at_zero() -> None:
    metrics = ModelMetrics("m", "1", classes=["a", "b"], feature_categories={"merchant": ["x", "y"]})

    assert {lab["class"]: v for lab, v in samples(metrics, "model_predictions_total")} == {"a": 0, "b": 0}
    assert len(samples(metrics, "model_feedback_total")) == 4
    assert {lab["category"] for lab, _ in samples(metrics, "model_feature_category_total")} == {"x", "y"}


def test_predictions_count_per_class(metrics: ModelMetrics) -> None:
    metrics.observe_prediction("legit")
    metrics.observe_prediction("fraud", count=3)
    assert {lab["class"]: v for lab, v in samples(metrics, "model_predictions_total")} == {"legit": 1, "fraud": 3}


def test_each_instance_gets_a_private_registry_not_the_global_one() -> None:
    first, second = ModelMetrics("m", "1"), ModelMetrics("m", "2")
    first.observe_prediction("a")

    assert first.registry is not second.registry and first.registry is not REGISTRY
    assert REGISTRY.get_sample_value("model_predictions_total", {"model": "m", "version": "1", "class": "a"}) is None
    assert second.registry.get_sample_value("model_predictions_total", {"model": "m", "version": "2", "class": "a"}) is None


def test_a_registry_holds_one_model_metrics() -> None:
    registry = CollectorRegistry()
    ModelMetrics("m", "1", registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        ModelMetrics("m", "2", registry=registry)


def test_openmetrics_is_served_when_the_scraper_asks_for_it(metrics: ModelMetrics) -> None:
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    assert metrics.render()[1].startswith("text/plain; version=0.0.4")


def test_wsgi_app_serves_the_exposition(metrics: ModelMetrics) -> None:
    from wsgiref.util import setup_testing_defaults

    metrics.observe_prediction("legit")
    environ: dict[str, object] = {"PATH_INFO": "/metrics"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(metrics.wsgi_app()(environ, lambda s, headers: status.append(s)))
    assert status == ["200 OK"]
    assert b'model_predictions_total{class="legit",model="fraud-detector",version="3"} 1.0' in body


def test_concurrent_observations_are_all_counted(metrics: ModelMetrics) -> None:
    def work() -> None:
        for _ in range(500):
            metrics.observe_features({"amount": 50.0, "hour": 1.0})  # hour: default bounds

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert value(metrics, "model_feature_value_count", feature="amount") == 2000
    assert value(metrics, "model_feature_value_sum", feature="amount") == 100_000
    assert value(metrics, "model_feature_value_bucket", feature="hour", le="+Inf") == 2000


def test_buckets_from_sample_are_deduplicated_quantiles() -> None:
    assert buckets_from_sample(range(1, 101), 4) == (25, 50, 75, 100)
    assert buckets_from_sample([1, 1, 1, 2, None, math.nan], 4) == (1, 2)
    with pytest.raises(ValueError):
        buckets_from_sample([math.nan])


def test_the_module_imports_nothing_else_of_modelpilot() -> None:
    """It ships inside model server images, where only prometheus_client is installed."""
    tree = ast.parse(Path(instrument.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert not relative
    assert not {m for m in imported if m.split(".")[0] == "modelpilot"}
    assert {m.split(".")[0] for m in imported} <= {
        "__future__",
        "math",
        "threading",
        "time",
        "collections",
        "contextlib",
        "numbers",
        "typing",
        "prometheus_client",
    }
