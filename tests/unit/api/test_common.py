from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from pydantic import TypeAdapter, ValidationError

from modelpilot.api import ApiModel, format_duration, parse_duration
from modelpilot.api.canary import CanaryAnalysisRecord, CanaryReleaseStatus, Webhook
from modelpilot.api.common import MlflowSettings, PrometheusEndpoint, PromQLTemplate, Rule

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        ("250ms", timedelta(milliseconds=250)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "-5m", "0s", "1.5h", "5M", "1y"])
def test_bad_durations_are_refused_with_the_fix(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration_is_shortest() -> None:
    assert format_duration(timedelta(days=8, hours=1, seconds=5)) == "1w1d1h5s"


PROMQL = TypeAdapter(PromQLTemplate)


def test_promql_template_accepts_known_placeholders() -> None:
    text = "sum by (le) (rate(model_request_duration_seconds_bucket{$selector}[$window]))"
    assert PROMQL.validate_python(text) == text
    assert PROMQL.validate_python('up{model="${model}",version="$version",path=~"/v1$$"}') is not None
    # Brackets inside label values are text, not structure.
    assert PROMQL.validate_python('sum(rate(http_requests_total{path=")"}[$window]))') is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('rate(x{model="$modell"}[5m])', "unknown placeholder"),
        ("sum(rate(x[5m])", "unclosed"),
        ("sum(rate(x[5m])))", "invalid PromQL"),
        ("rate(x{a='b')[5m]", "invalid PromQL"),
        ("sum(nosuchfunction(x))", "unknown function"),
        ("rate(x)", "invalid PromQL"),  # rate takes a range vector
        ("up{$selector} or $window", "invalid PromQL"),
        ("x * $", "'\\$'"),
    ],
)
def test_promql_template_refuses_mistakes(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PROMQL.validate_python(text)


class _Window(ApiModel):
    start: int
    end: int

    rules: ClassVar[tuple[Rule[_Window], ...]] = (
        Rule("self.start < self.end", "end must come after start", lambda window: window.start < window.end, ".end"),
    )


def test_a_rule_is_one_cel_rule_and_one_python_check_with_one_message() -> None:
    assert _Window.model_json_schema()["x-kubernetes-validations"] == [
        {"rule": "self.start < self.end", "message": "end must come after start", "fieldPath": ".end"}
    ]
    assert _Window(start=1, end=2).end == 2
    with pytest.raises(ValidationError) as caught:
        _Window(start=2, end=1)
    [error] = caught.value.errors()
    assert error["msg"] == "end must come after start"
    assert error["ctx"]["field_path"] == ".end"


def test_a_body_never_holds_a_non_finite_number() -> None:
    status = CanaryReleaseStatus(
        actual_weight=math.inf,
        last_analysis=[
            CanaryAnalysisRecord(metric="custom", time=NOW, verdict="Fail", value=math.inf, baseline=-math.inf, pvalue=math.nan)
        ],
    )
    body = status.to_body()
    # Strict JSON, as the API server reads it: Infinity and NaN would be refused.
    json.dumps(body, allow_nan=False)
    assert "actualWeight" not in body
    assert body["lastAnalysis"][0] == {"metric": "custom", "time": "2026-03-01T00:00:00Z", "verdict": "Fail", "message": ""}


@pytest.mark.parametrize(
    "url",
    [
        "file:///var/lib/prometheus",
        "http://prometheus:9090/#/graph",
        "http://admin:s3cret@prometheus:9090",
        "http://prometheus:9090/api?x=1",
        "gopher://prometheus",
        "http://prom etheus:9090",
    ],
)
def test_service_urls_are_plain_http_or_https(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        PrometheusEndpoint(url=url)
    with pytest.raises(ValidationError, match="tracking_uri|trackingUri"):
        MlflowSettings(tracking_uri=url)


def test_service_urls_keep_a_path_prefix() -> None:
    assert PrometheusEndpoint(url="https://mimir.example.org/prometheus").url == "https://mimir.example.org/prometheus"
    assert MlflowSettings(tracking_uri="http://mlflow.ml:5000").tracking_uri == "http://mlflow.ml:5000"


def test_timeouts_are_bounded() -> None:
    assert PrometheusEndpoint(url="http://p:9090", timeout="1m").timeout == "1m"
    with pytest.raises(ValidationError, match="at most 1m"):
        PrometheusEndpoint(url="http://p:9090", timeout="3650d")
    with pytest.raises(ValidationError, match="at most 30s"):
        Webhook.model_validate({"type": "event", "urlSecret": {"name": "hooks", "key": "url"}, "timeout": "5m"})
