from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from modelpilot.api import format_duration, parse_duration
from modelpilot.api.common import PromQLTemplate


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
    text = 'sum by (le) (rate(model_request_duration_seconds_bucket{$selector}[$window]))'
    assert PROMQL.validate_python(text) == text
    assert PROMQL.validate_python('up{model="${model}",version="$version"} * $$') is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('rate(x{model="$modell"}[5m])', "unknown placeholder"),
        ("sum(rate(x[5m])", "unclosed"),
        ("sum(rate(x[5m])))", "unbalanced"),
        ("rate(x{a='b')[5m]", "unbalanced"),
        ("x * $", "'\\$'"),
    ],
)
def test_promql_template_refuses_mistakes(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PROMQL.validate_python(text)
