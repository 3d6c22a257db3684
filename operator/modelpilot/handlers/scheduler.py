"""The operator's own tick scheduler: every resource of every kind gets its tick at its kind's
interval, with a bounded number in flight, shared fairly between namespaces.

kopf's timers would start the ticks too, but kopf puts a finalizer on every resource that has
one, so deleting a resource (or its namespace) hangs while the operator is down or uninstalled,
and nothing bounds how many run at once. Here a watch keeps only the latest body of each
resource (no finalizer), and one loop starts the ticks that are due: at most ``per_namespace``
of one namespace at a time, and at most ``slots`` in all, so a namespace whose Prometheus never
answers holds its own slots, not everybody's.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from modelpilot.api import GROUP, VERSION

from .leadership import LEADERSHIP
from .tick import Cluster, KubeCluster, TickLogger, TickSteps, run_tick

__all__ = ["SCHEDULER", "STUCK_AFTER", "Scheduler", "schedule"]

ResourceKey = tuple[str, str, str]  # kind, namespace, name


@dataclass
class _Resource:
    steps: TickSteps[Any, Any, Any, Any, Any]
    body: Mapping[str, Any]
    next_tick: float = 0.0
    in_flight: bool = False


@dataclass
class _Kind:
    steps: TickSteps[Any, Any, Any, Any, Any]
    interval: float


@dataclass
class Scheduler:
    """Starts each watched resource's tick every interval of its kind."""

    cluster: Cluster
    slots: int = 16
    per_namespace: int = 4
    clock: Callable[[], float] = time.monotonic
    acting: Callable[[], bool] = lambda: True  # False on a standby replica: it starts nothing
    kinds: dict[str, _Kind] = field(default_factory=dict)
    resources: dict[ResourceKey, _Resource] = field(default_factory=dict)
    last_look: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._all = asyncio.Semaphore(self.slots)
        self._namespaces: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add_kind(self, steps: TickSteps[Any, Any, Any, Any, Any], interval: float) -> None:
        self.kinds[steps.kind.kind] = _Kind(steps, interval)

    def watched(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event: keep the newest body, forget a deleted resource."""
        meta = body.get("metadata") or {}
        key = (kind, meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            self.resources.pop(key, None)
            return
        known = self.resources.get(key)
        if known is None:
            self.resources[key] = _Resource(self.kinds[kind].steps, copy.deepcopy(dict(body)), self.clock())
        else:
            known.body = copy.deepcopy(dict(body))

    def start_due(self, logger: TickLogger) -> int:
        """Start the tick of every resource that is due and not ticking; how many started."""
        now, started = self.clock(), 0
        if not self.acting():
            return 0
        for (kind, namespace, _), resource in list(self.resources.items()):
            if resource.in_flight or resource.next_tick > now:
                continue
            resource.in_flight = True
            resource.next_tick = now + self.kinds[kind].interval
            task = asyncio.create_task(self._tick(namespace, resource, logger))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _tick(self, namespace: str, resource: _Resource, logger: TickLogger) -> None:
        own = self._namespaces.setdefault(namespace, asyncio.Semaphore(self.per_namespace))
        try:
            # The namespace's own slots first: its queue for the shared ones never outgrows them.
            async with own, self._all:
                await run_tick(resource.steps, resource.body, self.cluster, logger=logger)
        except Exception:  # the API server failing: the next interval tries again
            logger.exception("tick of %s/%s failed", namespace, resource.body["metadata"].get("name"))
        finally:
            resource.in_flight = False

    async def run(self, logger: TickLogger, resolution: float = 0.5) -> None:
        """Start due ticks for ever, looking every ``resolution`` seconds."""
        while True:
            try:
                self.start_due(logger)
            except Exception:  # a bug here must not end the loop: liveness would then restart us
                logger.exception("starting ticks failed")
            self.last_look = self.clock()
            await asyncio.sleep(resolution)

    def stuck_for(self) -> float:
        """Seconds since the loop last looked for due ticks."""
        return self.clock() - self.last_look

    async def stop(self) -> None:
        """Cancel the ticks in flight (the operator is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


SCHEDULER = Scheduler(KubeCluster(), acting=LEADERSHIP.acting)


def schedule(steps: TickSteps[Any, Any, Any, Any, Any], interval: float, scheduler: Scheduler = SCHEDULER) -> None:
    """Tick every resource of ``steps.kind`` every ``interval`` seconds."""
    scheduler.add_kind(steps, interval)

    @kopf.on.event(GROUP, VERSION, steps.kind.plural, id=f"watch-{steps.kind.singular}")
    async def watched(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
        scheduler.watched(steps.kind.kind, event.get("type"), body)


_LOOP: list[asyncio.Task[None]] = []


@kopf.on.startup()
async def start_ticking(logger: TickLogger, **_: Any) -> None:
    if LEADERSHIP.enabled:
        _LOOP.append(asyncio.create_task(LEADERSHIP.run(logger)))
    _LOOP.append(asyncio.create_task(SCHEDULER.run(logger)))


#: The liveness probe fails when the tick loop has not looked for due ticks for this long.
STUCK_AFTER = 30.0


@kopf.on.probe(id="ticking")
async def ticking(**_: Any) -> float:
    """Seconds since the tick loop last ran (on /healthz); raises, failing liveness, when stuck."""
    stuck = SCHEDULER.stuck_for()
    if stuck > STUCK_AFTER:
        raise RuntimeError(f"the tick loop has not run for {stuck:.0f}s")
    return round(stuck, 1)


@kopf.on.cleanup()
async def stop_ticking(**_: Any) -> None:
    for loop in _LOOP:
        loop.cancel()
    await SCHEDULER.stop()
    await LEADERSHIP.release()
