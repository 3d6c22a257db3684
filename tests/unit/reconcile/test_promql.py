from datetime import UTC, datetime, timedelta

import promql_parser
import pytest

from modelpilot.api import MODEL_MONITOR, load_spec
from modelpilot.reconcile.monitor import query_plan
from modelpilot.reconcile.promql import PRESETS, QUERY_NAMES, render

AT = datetime(2026, 3, 1, tzinfo=UTC)


def test_generic_queries_select_model_and_version() -> None:
    promql = render(PRESETS["generic"], "featureBuckets", model="m", version="7", namespace="ns", window=timedelta(days=1))
    assert promql == 'sum by (feature, le) (increase(model_feature_value_bucket{model="m",version="7"}[1d]))'
    unversioned = render(PRESETS["generic"], "requests", model="m", version=None, namespace="ns", window=timedelta(minutes=5))
    assert '{model="m"}[5m]' in unversioned


def test_overrides_win_and_see_placeholders() -> None:
    promql = render(
        PRESETS["triton"],
        "requests",
        model="m",
        version="1",
        namespace="prod",
        window=timedelta(hours=1),
        overrides={"requests": 'sum by (status) (increase(my_requests{$selector,ns="$namespace"}[$window]))'},
    )
    assert promql == 'sum by (status) (increase(my_requests{model="m",version="1",ns="prod"}[1h]))'


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_answers_the_quality_and_drift_queries(preset: str) -> None:
    for name in ("predictions", "feedback", "featureBuckets", "featureCategories", "latencyBuckets", "requests"):
        assert render(PRESETS[preset], name, model="m", version="1", namespace="n", window=timedelta(minutes=5))
    assert set(PRESETS[preset].queries) <= set(QUERY_NAMES)


def test_query_count_does_not_grow_with_features() -> None:
    spec = load_spec(
        MODEL_MONITOR,
        {
            "model": {"name": "m"},
            "prometheus": {"url": "http://p:9090"},
            "drift": {"window": "1d", "baseline": {"offset": "35d", "window": "7d"}, "features": [f"f{i}" for i in range(50)]},
        },
    )
    current, baseline, series = query_plan(spec, namespace="n", version=None, at=AT)
    # Eleven model queries for the current window (featureMissing and featureSums among them),
    # four for the baseline, the quality series.
    assert len(current) + len(baseline) + (series is not None) == 15
    feature_baseline = next(q for q in baseline if q.name == "featureBuckets")
    assert feature_baseline.at == AT - timedelta(days=35)
    assert "[1w]" in feature_baseline.promql


def test_absolute_baseline_and_profile_baseline() -> None:
    base = {"model": {"name": "m", "version": {"fixed": "1"}}, "prometheus": {"url": "http://p:9090"}}
    absolute = load_spec(
        MODEL_MONITOR, {**base, "drift": {"baseline": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"}}}
    )
    _, baseline, _ = query_plan(absolute, namespace="n", version="1", at=AT)
    assert {q.at for q in baseline} == {datetime(2026, 1, 8, tzinfo=UTC)}
    assert all("[1w]" in q.promql for q in baseline)
    profile = load_spec(
        MODEL_MONITOR, {**base, "mlflow": {"trackingUri": "http://mlflow:5000"}, "drift": {"baseline": {"mlflowProfile": True}}}
    )
    assert query_plan(profile, namespace="n", version="1", at=AT)[1] == []


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_query_is_valid_promql(preset: str) -> None:
    for name in PRESETS[preset].queries:
        promql = render(PRESETS[preset], name, model="m", version="1", namespace="n", window=timedelta(minutes=5))
        assert promql is not None
        promql_parser.parse(promql)


@pytest.mark.parametrize(
    "version",
    ['3"} or vector(0) or up{x="', '3\\"} or vector(0)', "3\n", 'a"b\\c'],
)
def test_a_crafted_version_stays_a_label_value(version: str) -> None:
    promql = render(PRESETS["generic"], "requests", model="m", version=version, namespace="n", window=timedelta(minutes=5))
    assert promql is not None
    parsed = promql_parser.parse(promql)
    # Still one aggregation over one selector: nothing was appended to the query.
    assert isinstance(parsed, promql_parser.AggregateExpr)
    selector = parsed.expr.args[0].vector_selector if hasattr(parsed.expr, "args") else None
    assert selector is not None
    matchers = {m.name: m.value for m in selector.matchers.matchers}
    assert matchers == {"model": "m", "version": version}
