"""Five-field cron expressions (minute hour day-of-month month day-of-week), evaluated in UTC.

Here beside the models, so that an expression is checked when a spec is loaded (refused naming
its field) and never fails later, inside a decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["CronError", "check_cron", "next_cron_time", "parse_cron"]

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_SEARCH_DAYS = 366 * 5  # long enough for 29 February on a given weekday


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message names the field."""


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                start, end = (int(x) for x in base.split("-", 1))
            else:
                start = end = int(base)
        except ValueError:
            raise CronError(f"cron {name} field {text!r}: expected *, N, N-M, lists and /step") from None
        if step < 1 or not low <= start <= end <= high:
            raise CronError(f"cron {name} field {text!r}: values must lie in {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_cron(expression: str) -> tuple[frozenset[int], ...]:
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"cron expression {expression!r}: expected 5 fields (minute hour day month weekday)")
    fields = [_parse_field(part, *spec) for part, spec in zip(parts, _FIELDS)]
    fields[4] = frozenset(d % 7 for d in fields[4])  # 7 is Sunday too
    return tuple(fields)


def next_cron_time(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that matches (whole minutes, UTC).

    As in cron, when both day of month and day of week are restricted, either may match.
    """
    minutes, hours, days, months, weekdays = parse_cron(expression)
    day_restricted = expression.split()[2] != "*"
    weekday_restricted = expression.split()[4] != "*"
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.replace(hour=0, minute=0)
    for offset in range(_SEARCH_DAYS):
        current = day + timedelta(days=offset)
        cron_weekday = (current.weekday() + 1) % 7  # cron counts from Sunday
        by_day, by_weekday = current.day in days, cron_weekday in weekdays
        if day_restricted and weekday_restricted:
            matches_day = by_day or by_weekday
        else:
            matches_day = by_day and by_weekday
        if current.month not in months or not matches_day:
            continue
        for hour in sorted(hours):
            for minute in sorted(minutes):
                candidate = current.replace(hour=hour, minute=minute)
                if candidate >= start:
                    return candidate
    raise CronError(f"cron expression {expression!r} never matches")


def check_cron(expression: str) -> str:
    """``expression`` when it parses and matches some time; raises CronError saying why not."""
    next_cron_time(expression, datetime(2000, 1, 1, tzinfo=UTC))
    return expression
