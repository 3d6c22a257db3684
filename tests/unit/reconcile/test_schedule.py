from datetime import UTC, datetime

import pytest
import yaml

from modelpilot.api import RETRAIN_POLICY, SpecError, load_spec
from modelpilot.api.cron import CronError, next_cron_time
from tests.support.kube import REPO

T = datetime(2026, 3, 4, 10, 17, 30, tzinfo=UTC)  # a Wednesday


def brute_force(expression: str, after: datetime) -> datetime:
    """An independent check: walk minute by minute and test each field directly."""
    from datetime import timedelta

    minute, hour, dom, month, dow = expression.split()

    def ok(field: str, value: int) -> bool:
        return field == "*" or any(
            (int(p.split("/")[0].split("-")[0]) if p.split("/")[0] != "*" else 0)
            <= value
            <= (int(p.split("/")[0].split("-")[-1]) if p.split("/")[0] != "*" else 99)
            and (value - (int(p.split("/")[0].split("-")[0]) if p.split("/")[0] != "*" else 0))
            % (int(p.split("/")[1]) if "/" in p else 1)
            == 0
            for p in field.split(",")
        )

    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while True:
        weekday = (t.weekday() + 1) % 7
        days = ok(dom, t.day) or ok(dow, weekday) if dom != "*" and dow != "*" else ok(dom, t.day) and ok(dow, weekday)
        if ok(minute, t.minute) and ok(hour, t.hour) and ok(month, t.month) and days:
            return t
        t += timedelta(minutes=1)


@pytest.mark.parametrize(
    "expression",
    ["*/15 * * * *", "0 3 * * *", "30 2 * * 0", "0 0 1 * *", "0 12 * * 1-5", "5,35 */6 * * *", "0 0 13 * 5", "0 9 * 6 *"],
)
def test_next_time_matches_a_minute_by_minute_walk(expression: str) -> None:
    assert next_cron_time(expression, T) == brute_force(expression, T)


def test_next_time_is_strictly_after() -> None:
    at = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    assert next_cron_time("0 3 * * *", at) == datetime(2026, 3, 5, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["* * * *", "61 * * * *", "a * * * *", "0 0 31 2 *"])
def test_bad_expressions_are_refused(expression: str) -> None:
    with pytest.raises(CronError):
        next_cron_time(expression, T)


@pytest.mark.parametrize(
    ("expression", "said"),
    [("0 0 0 * *", "day of month field '0': values must lie in 1-31"), ("0 0 31 2 *", "never matches")],
)
def test_a_cron_that_cannot_run_is_refused_when_the_spec_is_loaded(expression: str, said: str) -> None:
    spec = yaml.safe_load((REPO / "examples" / "retrainpolicy.yaml").read_text())["spec"]
    spec["triggers"]["schedule"] = {"cron": expression}
    with pytest.raises(SpecError) as refused:
        load_spec(RETRAIN_POLICY, spec)
    assert refused.value.field == "spec.triggers.schedule.cron"
    assert said in refused.value.message
