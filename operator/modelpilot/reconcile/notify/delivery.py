"""Delivery to one channel as a pure state machine: grouping, a rate limit and retries.

Notices wait ``GROUP_WAIT`` after the first of them, then go out as one message; a channel
takes at most ``RATE_LIMIT`` messages per ``RATE_PERIOD``, and notices arriving while it is full
wait for the next allowed message (counted in ``suppressed``), so a flapping monitor cannot
flood a channel; a failed message is retried with backoff and given up after ``MAX_ATTEMPTS``.
The caller reads the clock and does the sending: ``offer`` -> ``take`` -> ``delivered`` or ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from modelpilot.api.notify import DeliveryStatus

from ..decision import MESSAGE_LIMIT, backoff
from .notices import Notice

__all__ = [
    "FIRST_RETRY",
    "GROUP_WAIT",
    "MAX_ATTEMPTS",
    "MAX_RETRY",
    "PENDING_LIMIT",
    "RATE_LIMIT",
    "RATE_PERIOD",
    "ChannelState",
    "Message",
    "delivered",
    "delivery_status",
    "due_at",
    "failed",
    "offer",
    "take",
]

#: Long enough to gather the news of one evaluation and of its neighbours (a canary step and the
#: monitor watching it) into one message; short enough that a page still arrives promptly.
GROUP_WAIT = timedelta(seconds=10)
#: A person reads five messages in ten minutes; beyond that a channel is noise (a monitor that
#: flaps every interval would otherwise post every 20 s). Held notices ride in the next message.
RATE_LIMIT = 5
RATE_PERIOD = timedelta(minutes=10)
#: Retries double from 5 s, as the tick's own backoff does; after 6 tries (about 2.5 min of a
#: receiver failing) the message is given up and the next notice starts afresh.
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=5)
MAX_ATTEMPTS = 6
#: Notices one channel holds at most; beyond, only the newest of each resource's condition is
#: kept (the others are counted as omitted), so a long outage of a receiver bounds memory.
PENDING_LIMIT = 200

Outcome = Literal["Delivered", "Pending", "Retrying", "Failed", "RateLimited"]


@dataclass(frozen=True)
class Message:
    """What one delivery carries: the notices in the order they came, and how many more were
    folded away (older news of the same conditions) to bound a message."""

    notices: tuple[Notice, ...]
    omitted: int = 0


@dataclass(frozen=True)
class ChannelState:
    """One channel's deliveries: what waits, what is being sent, and what happened last."""

    pending: tuple[Notice, ...] = ()
    omitted: int = 0
    #: When the oldest pending notice arrived: the group window runs from then.
    since: datetime | None = None
    #: When each message of the last RATE_PERIOD started.
    sent: tuple[datetime, ...] = ()
    current: Message | None = None
    attempts: int = 0
    #: When ``current`` is tried (again); None while a try is under way.
    retry_at: datetime | None = None
    last_attempt: datetime | None = None
    last_delivered: datetime | None = None
    suppressed: int = 0
    outcome: Outcome = "Pending"
    why: str = ""


def _recent(state: ChannelState, now: datetime) -> tuple[datetime, ...]:
    return tuple(t for t in state.sent if now - t < RATE_PERIOD)


def _limited_until(state: ChannelState, now: datetime) -> datetime | None:
    """When the rate limit lets the next message go; None when it does now."""
    recent = _recent(state, now)
    return recent[-RATE_LIMIT] + RATE_PERIOD if len(recent) >= RATE_LIMIT else None


def _compact(pending: Sequence[Notice]) -> tuple[tuple[Notice, ...], int]:
    if len(pending) <= PENDING_LIMIT:
        return tuple(pending), 0
    latest = {n.dedup_key: i for i, n in enumerate(pending)}
    kept = tuple(n for i, n in enumerate(pending) if latest[n.dedup_key] == i)[-PENDING_LIMIT:]
    return kept, len(pending) - len(kept)


def offer(state: ChannelState, notices: Sequence[Notice], now: datetime) -> ChannelState:
    """``state`` with ``notices`` waiting to be sent."""
    if not notices:
        return state
    pending, folded = _compact([*state.pending, *notices])
    held = len(notices) if _limited_until(state, now) is not None else 0
    return replace(
        state,
        pending=pending,
        omitted=state.omitted + folded,
        since=state.since or now,
        suppressed=state.suppressed + held,
    )


def due_at(state: ChannelState, now: datetime) -> datetime | None:
    """When ``take`` next has something to do; None: nothing waits."""
    if state.current is not None:
        return state.retry_at
    if not state.pending or state.since is None:
        return None
    return max(state.since + GROUP_WAIT, _limited_until(state, now) or state.since)


def take(state: ChannelState, now: datetime) -> tuple[ChannelState, Message | None]:
    """The message to try now, if any; the state then waits for ``delivered`` or ``failed``."""
    due = due_at(state, now)
    if due is None or due > now:
        return state, None
    if state.current is not None:  # a retry
        return replace(state, retry_at=None), state.current
    message = Message(state.pending, state.omitted)
    taken = replace(
        state, pending=(), omitted=0, since=None, sent=(*_recent(state, now), now), current=message, attempts=0, retry_at=None
    )
    return taken, message


def delivered(state: ChannelState, now: datetime) -> ChannelState:
    return replace(
        state,
        current=None,
        attempts=state.attempts + 1,
        retry_at=None,
        last_attempt=now,
        last_delivered=now,
        outcome="Delivered",
        why="",
    )


def failed(state: ChannelState, now: datetime, why: str, *, permanent: bool = False) -> ChannelState:
    """``state`` after a failed try: retried later, or given up (``permanent``: retrying cannot
    help, such as a Secret that did not opt in)."""
    attempts, why = state.attempts + 1, why[:MESSAGE_LIMIT]
    if permanent or attempts >= MAX_ATTEMPTS:
        return replace(state, current=None, attempts=attempts, retry_at=None, last_attempt=now, outcome="Failed", why=why)
    retry_at = now + backoff(FIRST_RETRY, MAX_RETRY, attempts)
    return replace(state, attempts=attempts, retry_at=retry_at, last_attempt=now, outcome="Retrying", why=why)


def delivery_status(channel: str, state: ChannelState, now: datetime) -> DeliveryStatus:
    """What status shows of ``state``."""
    outcome: Outcome = state.outcome
    if state.current is not None:
        outcome = "Retrying" if state.attempts else "Pending"
    elif state.pending:
        outcome = "RateLimited" if _limited_until(state, now) is not None else "Pending"
    return DeliveryStatus(
        channel=channel,
        state=outcome,
        last_attempt=state.last_attempt,
        last_delivered=state.last_delivered,
        attempts=state.attempts,
        suppressed=state.suppressed,
        message=state.why if outcome in ("Retrying", "Failed") else "",
    )
