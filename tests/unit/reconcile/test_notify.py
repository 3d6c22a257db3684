"""Notifications, decided: which transitions are news and how urgent, the delivery state machine
(grouping, rate limit, retries) and the bodies per channel type."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpilot.api import Condition, ConditionStatus
from modelpilot.api.notify import NotificationChannel
from modelpilot.reconcile import set_condition
from modelpilot.reconcile.monitor.alerts import PROBLEMS
from modelpilot.reconcile.notify import (
    ChannelState,
    Message,
    Notice,
    delivered,
    delivery_status,
    due_at,
    email,
    failed,
    for_channel,
    http_bodies,
    notices,
    offer,
    redact,
    take,
)
from modelpilot.reconcile.notify.delivery import (
    FIRST_RETRY,
    GROUP_WAIT,
    MAX_ATTEMPTS,
    PENDING_LIMIT,
    RATE_LIMIT,
    RATE_PERIOD,
)
from modelpilot.reconcile.notify.render import LISTED

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ANY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def cond(type_: str, status: ConditionStatus, reason: str = "Because", message: str = "") -> list[Condition]:
    return set_condition([], type_, status, reason, message, now=T0, generation=1)


def seen(kind: str, before: list[Condition], after: list[Condition]) -> list[tuple[str, str, str]]:
    return [(n.condition, n.state, n.severity) for n in notices(kind, "ns", "res", before, after, T0)]


def channel(type_: str = "webhook", least: str = "info", **extra: object) -> NotificationChannel:
    return NotificationChannel.model_validate(
        {"name": "alerts", "type": type_, "secret": {"name": "hooks", "key": "url"}, "minSeverity": least, **extra}
    )


# --- which transitions are news -------------------------------------------------------------


def test_a_monitor_problem_fires_at_its_alert_severity_and_resolves_at_the_same() -> None:
    assert seen("ModelMonitor", [], cond("DataDrift", "True")) == [("DataDrift", "firing", "warning")]
    assert seen("ModelMonitor", [], cond("PerformanceDegraded", "True")) == [("PerformanceDegraded", "firing", "critical")]
    assert seen("ModelMonitor", cond("PerformanceDegraded", "True"), cond("PerformanceDegraded", "False")) == [
        ("PerformanceDegraded", "resolved", "critical")
    ]
    assert seen("ModelMonitor", cond("Healthy", "True"), cond("Healthy", "False")) == [("Healthy", "firing", "critical")]


def test_every_monitor_problem_comes_from_the_one_alert_table() -> None:
    for type_, (bad, severity) in PROBLEMS.items():
        assert seen("ModelMonitor", [], cond(type_, bad)) == [(type_, "firing", severity)]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([], cond("DataDrift", "False")),  # the first evaluation finds nothing wrong
        (cond("DataDrift", "True", "A"), cond("DataDrift", "True", "B")),  # the same problem, said otherwise
        (cond("DataDrift", "True"), cond("DataDrift", "Unknown")),  # an outage ends nothing
        (cond("DataDrift", "Unknown"), cond("DataDrift", "False")),
        (cond("Ready", "True"), cond("Ready", "False")),  # no problem of the table
    ],
)
def test_what_is_not_news_for_a_monitor(before: list[Condition], after: list[Condition]) -> None:
    assert seen("ModelMonitor", before, after) == []


def test_canary_lifecycle_news_and_problems() -> None:
    assert seen("CanaryRelease", cond("Promoted", "False", "NotPromoted"), cond("Promoted", "True", "Promoted")) == [
        ("Promoted", "news", "info")
    ]
    assert seen("CanaryRelease", [], cond("RolledBack", "True", "MetricFailed")) == [("RolledBack", "firing", "critical")]
    assert seen("CanaryRelease", [], cond("RolledBack", "True", "Aborted")) == [("RolledBack", "firing", "warning")]
    waiting = cond("Paused", "True", "AwaitingApproval")
    assert seen("CanaryRelease", [], waiting) == [("Paused", "firing", "warning")]
    assert seen("CanaryRelease", waiting, cond("Paused", "False", "NotPaused")) == [("Paused", "resolved", "warning")]
    assert seen("CanaryRelease", [], cond("Progressing", "True", "Initializing")) == [("Progressing", "news", "info")]
    assert seen("CanaryRelease", cond("Progressing", "True", "Initializing"), cond("Progressing", "True", "Progressing")) == []
    assert seen("CanaryRelease", [], cond("Ready", "False", "StableNotFound")) == [("Ready", "firing", "warning")]
    # A rollback's own Ready=False is said by RolledBack, not twice.
    assert seen("CanaryRelease", cond("Ready", "True", "Progressing"), cond("Ready", "False", "RolledBack")) == []


def test_retrain_lifecycle_news_and_problems() -> None:
    assert seen("RetrainPolicy", cond("Training", "False", "NoRun"), cond("Training", "True", "JobRunning")) == [
        ("Training", "news", "info")
    ]
    assert seen("RetrainPolicy", [], cond("AwaitingApproval", "True", "WaitingForApproval")) == [
        ("AwaitingApproval", "firing", "warning")
    ]
    assert seen("RetrainPolicy", [], cond("Ready", "False", "PodPolicyViolation")) == [("Ready", "firing", "critical")]
    assert seen("RetrainPolicy", cond("Ready", "False", "PodPolicyViolation"), cond("Ready", "True", "Watching")) == [
        ("Ready", "resolved", "critical")
    ]


def test_a_channel_gets_its_minimum_severity_and_above() -> None:
    after = [*cond("DataDrift", "True"), *cond("PerformanceDegraded", "True")]
    found = notices("ModelMonitor", "ns", "m", [], after, T0)
    assert [n.condition for n in for_channel(found, channel(least="critical"))] == ["PerformanceDegraded"]
    assert len(for_channel(found, channel(least="warning"))) == 2
    assert len(for_channel(found, channel(least="info"))) == 2


# --- delivery: grouping, rate limit, retries ------------------------------------------------


def notice(i: int = 0, at: datetime = T0, state: str = "firing", severity: str = "warning", name: str = "m") -> Notice:
    return Notice(
        kind="ModelMonitor",
        namespace="ns",
        name=name,
        condition=f"DataDrift{i}" if i else "DataDrift",
        status="True" if state == "firing" else "False",
        reason="FeaturesDrifted",
        message=f"3 features drift ({i})",
        severity=severity,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        time=at,
    )


def test_notices_within_the_group_window_go_as_one_message() -> None:
    state = offer(ChannelState(), [notice(1)], T0)
    state = offer(state, [notice(2, T0 + GROUP_WAIT / 2)], T0 + GROUP_WAIT / 2)
    assert take(state, T0 + GROUP_WAIT / 2)[1] is None
    assert due_at(state, T0) == T0 + GROUP_WAIT
    assert delivery_status("alerts", state, T0).state == "Pending"
    state, message = take(state, T0 + GROUP_WAIT)
    assert message is not None and [n.condition for n in message.notices] == ["DataDrift1", "DataDrift2"]
    state = delivered(state, T0 + GROUP_WAIT)
    shown = delivery_status("alerts", state, T0 + GROUP_WAIT)
    assert (shown.state, shown.attempts, shown.last_delivered) == ("Delivered", 1, T0 + GROUP_WAIT)


def test_a_failed_message_is_retried_with_doubling_waits_then_given_up() -> None:
    state, message = take(offer(ChannelState(), [notice()], T0), T0 + GROUP_WAIT)
    assert message is not None
    now, waits = T0 + GROUP_WAIT, []
    for _ in range(MAX_ATTEMPTS - 1):
        state = failed(state, now, "answered 500")
        assert delivery_status("alerts", state, now).state == "Retrying"
        assert delivery_status("alerts", state, now).message == "answered 500"
        retry = due_at(state, now)
        assert retry is not None and take(state, retry - timedelta(seconds=1))[1] is None
        waits.append(retry - now)
        now = retry
        state, again = take(state, now)
        assert again == message
    assert waits == [FIRST_RETRY * 2**i for i in range(MAX_ATTEMPTS - 1)]
    state = failed(state, now, "answered 500")
    shown = delivery_status("alerts", state, now)
    assert (shown.state, shown.attempts) == ("Failed", MAX_ATTEMPTS)
    assert due_at(state, now) is None
    # The next notice starts afresh.
    state, fresh = take(offer(state, [notice(2, now)], now), now + GROUP_WAIT)
    assert fresh is not None and delivery_status("alerts", state, now).attempts == 0
    assert delivery_status("alerts", delivered(state, now + GROUP_WAIT), now).state == "Delivered"


def test_a_permanent_failure_is_given_up_at_once() -> None:
    state, _ = take(offer(ChannelState(), [notice()], T0), T0 + GROUP_WAIT)
    state = failed(state, T0 + GROUP_WAIT, "Secret ns/hooks is not labelled", permanent=True)
    shown = delivery_status("alerts", state, T0 + GROUP_WAIT)
    assert (shown.state, shown.attempts, shown.message) == ("Failed", 1, "Secret ns/hooks is not labelled")


def run_channel(arrivals: list[tuple[datetime, int]], fail_every: int = 0) -> tuple[list[tuple[datetime, Message]], ChannelState]:
    """Drive one channel as the notifier does: offer at each arrival, take whatever is due in
    between, deliver (or fail every ``fail_every``-th try); then drain. The messages delivered,
    each with the time of its first try."""
    state, sent, tries = ChannelState(), [], 0
    started: dict[int, datetime] = {}
    events = sorted(arrivals)
    now = T0
    horizon = (events[-1][0] if events else T0) + RATE_PERIOD * 40
    while now <= horizon:
        while events and events[0][0] <= now:
            at, count = events.pop(0)
            state = offer(state, [notice(i % 3, at, "firing" if i % 2 else "resolved") for i in range(count)], at)
        state, message = take(state, now)
        if message is not None:
            started.setdefault(id(message), now)
            tries += 1
            if fail_every and tries % fail_every == 0:
                state = failed(state, now, "answered 503")
            else:
                sent.append((started[id(message)], message))
                state = delivered(state, now)
        nexts = [t for t in (due_at(state, now), events[0][0] if events else None) if t is not None]
        if not nexts:
            break
        now = max(now, min(nexts))
    return sent, state


flapping = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3600), st.integers(min_value=1, max_value=4)), min_size=1, max_size=80
)


@ANY
@given(flaps=flapping, fail_every=st.sampled_from([0, 3]))
def test_however_a_condition_flaps_the_channel_gets_at_most_the_limit_and_loses_nothing(
    flaps: list[tuple[int, int]], fail_every: int
) -> None:
    arrivals = [(T0 + timedelta(seconds=s), n) for s, n in flaps]
    sent, state = run_channel(arrivals, fail_every)
    starts = [t for t, _ in sent]
    for t in starts:
        assert sum(t <= u < t + RATE_PERIOD for u in starts) <= RATE_LIMIT
    # Every notice went out, listed or counted (no try failed for good: at most 2 in a row).
    assert sum(len(m.notices) + m.omitted for _, m in sent) == sum(n for _, n in arrivals)
    assert state.pending == () and state.current is None
    # Notices that arrived while the channel was full are counted; none when it never was.
    assert state.suppressed <= sum(n for _, n in arrivals)
    if all(sum(t <= u < t + RATE_PERIOD for u in starts) < RATE_LIMIT for t in starts):
        assert state.suppressed == 0


def test_a_flapping_monitor_is_held_and_counted_in_suppressed() -> None:
    arrivals = [(T0 + timedelta(seconds=20 * i), 1) for i in range(60)]  # a flip every 20 s for 20 minutes
    sent, state = run_channel(arrivals)
    assert len([t for t, _ in sent if t < T0 + RATE_PERIOD]) == RATE_LIMIT
    assert state.suppressed > 0
    assert sum(len(m.notices) for _, m in sent) == 60
    held = offer(ChannelState(sent=tuple(T0 + timedelta(seconds=i) for i in range(RATE_LIMIT))), [notice()], T0 + GROUP_WAIT)
    assert delivery_status("alerts", held, T0 + GROUP_WAIT).state == "RateLimited"


def test_a_long_queue_keeps_the_newest_of_each_condition_and_counts_the_rest() -> None:
    many = [notice(i % 5, T0, "firing" if (i // 5) % 2 else "resolved") for i in range(PENDING_LIMIT + 50)]
    state = offer(ChannelState(), many, T0)
    assert len(state.pending) == 5 and state.omitted == PENDING_LIMIT + 45
    assert [n.state for n in state.pending] == [many[-5 + i].state for i in range(5)]


# --- bodies ----------------------------------------------------------------------------------


def message(*items: Notice) -> Message:
    return Message(items or (notice(1, severity="critical"), notice(2, state="resolved")))


def test_slack_body_has_text_and_blocks() -> None:
    (body,) = http_bodies(channel("slack"), message(notice(1)))
    assert body["text"].startswith("[WARNING] ModelMonitor ns/m: DataDrift1=True")
    assert body["blocks"][0]["type"] == "header"
    assert ":warning:" in body["blocks"][1]["text"]["text"]
    escaped = Notice(**{**notice().__dict__, "message": "a <b> & c"})
    (escaped_body,) = http_bodies(channel("slack"), message(escaped))
    assert "a &lt;b&gt; &amp; c" in escaped_body["blocks"][1]["text"]["text"]


def test_a_long_group_lists_some_and_counts_the_rest() -> None:
    many = Message(tuple(notice(i) for i in range(LISTED + 3)), omitted=2)
    (body,) = http_bodies(channel("slack"), many)
    assert body["blocks"][-1]["elements"][0]["text"] == "and 5 more"
    assert len(body["blocks"]) == LISTED + 2
    assert "25 notices" in body["text"]


def test_teams_body_is_an_adaptive_card() -> None:
    (body,) = http_bodies(channel("teams"), message())
    card = body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard" and card["content"]["body"][0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in card["content"]["body"][2]["facts"]}
    assert facts["Resource"] == "ModelMonitor ns/m" and facts["Severity"] == "critical"


def test_pagerduty_events_are_v2_without_routing_key_with_a_stable_dedup_key() -> None:
    firing, resolved = notice(1, severity="critical"), notice(1, T0 + timedelta(minutes=1), "resolved", "critical")
    (trigger,) = http_bodies(channel("pagerduty"), message(firing))
    assert trigger["event_action"] == "trigger" and "routing_key" not in trigger
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "ns/m"
    assert trigger["payload"]["summary"].startswith("[CRITICAL] ModelMonitor ns/m: DataDrift1=True")
    assert trigger["payload"]["custom_details"]["condition"] == "DataDrift1"
    (resolve,) = http_bodies(channel("pagerduty"), message(firing, resolved))  # newest of the condition
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]
    two = http_bodies(channel("pagerduty"), message(firing, notice(2)))
    assert len({e["dedup_key"] for e in two}) == 2


def test_webhook_body_has_every_field_of_every_notice() -> None:
    (body,) = http_bodies(channel("webhook"), message())
    assert body["version"] == "1" and body["receiver"] == "alerts" and body["omitted"] == 0
    assert body["notices"][1] == {
        "kind": "ModelMonitor",
        "namespace": "ns",
        "name": "m",
        "condition": "DataDrift2",
        "status": "False",
        "reason": "FeaturesDrifted",
        "message": "3 features drift (2)",
        "severity": "warning",
        "state": "resolved",
        "time": T0.isoformat(),
    }


def test_email_has_a_subject_and_a_plain_text_body() -> None:
    mail = email(message())
    assert mail.subject == "modelpilot: 2 notices about ModelMonitor ns/m (1 critical, 1 resolved)"
    assert "[RESOLVED] ModelMonitor ns/m: DataDrift2=False (FeaturesDrifted): 3 features drift (2)" in mail.text


# Each generated secret carries a marker no template holds, so finding it means it leaked (a bare
# "namespac" would be found in every body's "namespace" key).
secrets = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=4, max_size=36).map(
    lambda s: f"Zq7x{s}"
)


@ANY
@given(token=secrets, password=secrets)
def test_no_secret_in_any_body_nor_in_a_redacted_message(token: str, password: str) -> None:
    url = f"https://bot:{password}@hooks.example.org/services/{token}"
    found = notices("ModelMonitor", "ns", "m", [], cond("DataDrift", "True", "FeaturesDrifted", "amount drifts"), T0)
    for type_ in ("slack", "teams", "webhook", "pagerduty"):
        text = json.dumps(http_bodies(channel(type_), Message(tuple(found))))
        assert token not in text and password not in text
    assert token not in email(Message(tuple(found))).text
    said = f"POST {url} failed: 401 for user bot:{password} at /services/{token}"
    cleaned = redact(said, url)
    assert token not in cleaned and password not in cleaned and "failed: 401" in cleaned
    assert redact(f"no such key {token}", token) == "no such key ***"
