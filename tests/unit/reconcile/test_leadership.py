"""Who holds the operator's Lease, judged by each replica's own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelpilot.reconcile.leadership import LeaseRecord, LeaseTimes, claim

T0 = datetime(2026, 6, 1, tzinfo=UTC)
TIMES = LeaseTimes()


def test_the_first_replica_creates_the_lease() -> None:
    assert claim(None, seen_since=None, me="a", now=T0, times=TIMES) == LeaseRecord("a", T0, T0, 15, 0)


def test_the_holder_renews_and_keeps_when_it_acquired() -> None:
    held = LeaseRecord("a", T0, T0 - timedelta(hours=1), 15, 3)
    later = T0 + timedelta(seconds=2)
    assert claim(held, seen_since=T0, me="a", now=later, times=TIMES) == LeaseRecord("a", later, held.acquired, 15, 3)


def test_another_holders_lease_is_taken_only_a_whole_duration_after_it_last_changed() -> None:
    held = LeaseRecord("a", T0, T0, 15, 0)
    assert claim(held, seen_since=T0, me="b", now=T0 + timedelta(seconds=14.9), times=TIMES) is None
    taken = claim(held, seen_since=T0, me="b", now=T0 + timedelta(seconds=15), times=TIMES)
    assert taken == LeaseRecord("b", T0 + timedelta(seconds=15), T0 + timedelta(seconds=15), 15, 1)


def test_a_skewed_clock_does_not_make_a_fresh_lease_look_expired() -> None:
    # The holder's node runs an hour behind: its renewTime is old by our clock, but we saw it
    # change just now, so it is alive.
    held = LeaseRecord("a", T0 - timedelta(hours=1), T0 - timedelta(hours=1), 15, 0)
    assert claim(held, seen_since=T0, me="b", now=T0 + timedelta(seconds=5), times=TIMES) is None


def test_the_holders_own_duration_counts_not_ours() -> None:
    held = LeaseRecord("a", T0, T0, 60, 0)
    assert claim(held, seen_since=T0, me="b", now=T0 + timedelta(seconds=30), times=TIMES) is None
    assert claim(held, seen_since=T0, me="b", now=T0 + timedelta(seconds=60), times=TIMES) is not None


def test_a_released_lease_is_taken_at_once() -> None:
    released = LeaseRecord(None, T0, T0, 15, 4)
    assert claim(released, seen_since=T0, me="b", now=T0, times=TIMES) == LeaseRecord("b", T0, T0, 15, 5)


def test_the_holder_stops_acting_before_another_may_take_over() -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < duration"):
        LeaseTimes(duration=timedelta(seconds=10), renew_deadline=timedelta(seconds=10))
