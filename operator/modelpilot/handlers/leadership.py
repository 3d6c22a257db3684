"""Leader election among the operator's replicas: only the holder of the Lease ticks and admits.

Chosen over kopf's peering because the ticks are started by modelpilot's own scheduler (kopf's
peering pauses kopf's handlers, not tasks of ours), and because a Lease is what Argo Rollouts,
Flagger and every controller built on client-go use: `kubectl get lease` shows who leads. A
standby keeps watching (its view is warm when it takes over) but starts no tick and writes
nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

from modelpilot.api import now_utc
from modelpilot.reconcile.leadership import LeaseRecord, LeaseTimes, claim
from modelpilot.sources.kubernetes import KubeError
from modelpilot.sources.lease import read_lease, write_lease
from modelpilot.sources.pools import KUBERNETES

from .tick import TickLogger

__all__ = ["LEADERSHIP", "Leadership"]


@dataclass
class Leadership:
    """Whether this replica may act; always, unless election is enabled."""

    namespace: str = ""
    name: str = "modelpilot"
    identity: str = ""
    times: LeaseTimes = field(default_factory=LeaseTimes)
    enabled: bool = False
    _held_until: float = 0.0  # monotonic seconds; acting until then
    _seen: str | None = None  # the lease's resourceVersion when last seen to change
    _seen_since: datetime | None = None
    _leading_since: float | None = None

    def enable(self, *, namespace: str, name: str, identity: str, times: LeaseTimes | None = None) -> None:
        self.namespace, self.name, self.identity, self.enabled = namespace, name, identity, True
        self.times = times or LeaseTimes()

    def acting(self) -> bool:
        return not self.enabled or time.monotonic() < self._held_until

    async def run(self, logger: TickLogger) -> None:
        """Try to acquire or renew every retry period, for ever."""
        waiting_since = time.monotonic()
        while True:
            try:
                leading = await self.try_once()
            except KubeError as err:  # the API server failing: the deadline decides, not one error
                logger.warning("could not reach the lease %s/%s: %s", self.namespace, self.name, err)
                leading = self.acting()
            if leading and self._leading_since is None:
                self._leading_since = time.monotonic()
                logger.info(
                    "leading as %s (lease %s/%s) after %.1fs as standby",
                    self.identity,
                    self.namespace,
                    self.name,
                    self._leading_since - waiting_since,
                )
            elif not leading and self._leading_since is not None:
                logger.warning("lost the lease %s/%s: standing by", self.namespace, self.name)
                self._leading_since, waiting_since = None, time.monotonic()
            await asyncio.sleep(self.times.retry_period.total_seconds())

    async def try_once(self) -> bool:
        """One round: read the lease, write it when ours to take; whether this replica leads."""
        started = time.monotonic()
        record, version = await KUBERNETES.run(None, read_lease, self.namespace, self.name)
        now = now_utc()
        if version != self._seen:  # any write, a renewal within the same second too
            self._seen, self._seen_since = version, now
        wanted = claim(record, seen_since=self._seen_since, me=self.identity, now=now, times=self.times)
        if wanted is None:
            self._held_until = 0.0
            return False
        if not await KUBERNETES.run(None, write_lease, self.namespace, self.name, wanted, version):
            return self.acting()  # another replica wrote first; the next round reads it
        self._held_until = started + self.times.renew_deadline.total_seconds()
        return True

    async def release(self) -> None:
        """Give the lease up on a clean stop, so a standby takes over at once."""
        if not self.enabled or not self.acting():
            return
        self._held_until = 0.0
        record, version = await KUBERNETES.run(None, read_lease, self.namespace, self.name)
        if record is not None and record.holder == self.identity:
            released = LeaseRecord(None, now_utc(), record.acquired, record.duration_seconds, record.transitions)
            await KUBERNETES.run(None, write_lease, self.namespace, self.name, released, version)


LEADERSHIP = Leadership()
