"""Which replica acts: a coordination.k8s.io/v1 Lease held by one replica at a time.

Expiry is judged by the candidate's own clock, from when it first saw the holder's current
record, never by comparing another node's renewTime with its own clock: replicas on nodes whose
clocks disagree must still not both act. The holder renews every retry period; it stops acting
when it has not renewed for the renew deadline, before any other may take over (the lease
duration after its last renewal was seen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["LeaseRecord", "LeaseTimes", "claim"]


@dataclass(frozen=True)
class LeaseTimes:
    """How long a lease lasts unrenewed, how long its holder acts without renewing, how often
    each replica tries (client-go's defaults: 15 s, 10 s, 2 s)."""

    duration: timedelta = timedelta(seconds=15)
    renew_deadline: timedelta = timedelta(seconds=10)
    retry_period: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.duration:
            raise ValueError("a lease needs retry period < renew deadline < duration")


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease's spec that election reads and writes."""

    holder: str | None
    renewed: datetime | None = None
    acquired: datetime | None = None
    duration_seconds: int = 15
    transitions: int = 0


def claim(
    current: LeaseRecord | None, *, seen_since: datetime | None, me: str, now: datetime, times: LeaseTimes
) -> LeaseRecord | None:
    """The record ``me`` writes now, or None when another replica holds the lease.

    ``seen_since``: when this replica first saw ``current`` as it is (by its own clock).
    """
    seconds = int(times.duration.total_seconds())
    if current is None:
        return LeaseRecord(me, now, now, seconds, 0)
    if current.holder == me:
        return LeaseRecord(me, now, current.acquired or now, seconds, current.transitions)
    released = not current.holder
    expired = seen_since is not None and now >= seen_since + timedelta(seconds=current.duration_seconds)
    if released or expired:
        return LeaseRecord(me, now, now, seconds, current.transitions + 1)
    return None
