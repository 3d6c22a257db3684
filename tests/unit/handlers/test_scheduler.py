"""The tick scheduler: each resource at its kind's interval, never twice at once, and a slow
namespace holding only its own share of the slots."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from modelpilot.api import MODEL_MONITOR, Kind
from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus
from modelpilot.handlers.scheduler import Scheduler
from modelpilot.handlers.tick import TickSteps
from modelpilot.reconcile import Decision, EventToPost, MonitorRef, OwnerRef

LOGGER = logging.getLogger("test")
SPEC = {"model": {"name": "m"}, "prometheus": {"url": "http://prometheus:9090"}}


def body(namespace: str, name: str) -> dict[str, Any]:
    meta = {"namespace": namespace, "name": name, "uid": f"{namespace}-{name}", "generation": 1, "resourceVersion": "1"}
    return {"metadata": meta, "spec": SPEC, "status": {}}


class Bodies:
    """Serves what the scheduler watched, as the API server would; accepts every write."""

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}

    async def read(self, kind: Kind[Any, Any], ref: OwnerRef) -> Mapping[str, Any]:
        return self.bodies[(ref.namespace, ref.name)]

    async def write_status(self, kind: Kind[Any, Any], ref: OwnerRef, resource_version: str, patch: dict[str, Any]) -> bool:
        return True

    async def post_event(self, body: Mapping[str, Any], event: EventToPost) -> None:
        pass


class Tenants:
    """Ticks whose observation waits while its namespace's Prometheus does not answer."""

    def __init__(self) -> None:
        self.answering: dict[str, asyncio.Event] = {}
        self.observing: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.done: list[str] = []
        self.finished = asyncio.Event()

    def gate(self, namespace: str) -> asyncio.Event:
        return self.answering.setdefault(namespace, asyncio.Event())

    def steps(self) -> TickSteps[ModelMonitorSpec, ModelMonitorStatus, str, str, MonitorRef]:
        async def observe(spec: Any, status: Any, ref: MonitorRef, annotations: Any, now: datetime) -> str:
            self.observing[ref.namespace] = self.observing.get(ref.namespace, 0) + 1
            self.most[ref.namespace] = max(self.most.get(ref.namespace, 0), self.observing[ref.namespace])
            try:
                await self.gate(ref.namespace).wait()
            finally:
                self.observing[ref.namespace] -= 1
            return ref.name

        def decide(spec: Any, previous: ModelMonitorStatus, obs: str, /, **_: Any) -> Decision[ModelMonitorStatus, str]:
            return Decision(status=previous)

        async def apply(spec: Any, ref: MonitorRef, actions: Sequence[str]) -> list[str]:
            self.done.append(f"{ref.namespace}/{ref.name}")
            self.finished.set()
            return []

        return TickSteps(kind=MODEL_MONITOR, ref=MonitorRef, observe=observe, decide=decide, apply=apply)


def scheduler_for(tenants: Tenants, cluster: Bodies, clock: list[float], **limits: int) -> Scheduler:
    scheduler = Scheduler(cluster, clock=lambda: clock[0], **limits)
    scheduler.add_kind(tenants.steps(), interval=5.0)
    return scheduler


async def released(scheduler: Scheduler) -> None:
    while any(r.in_flight for r in scheduler.resources.values()):
        await asyncio.sleep(0)


def watch(scheduler: Scheduler, cluster: Bodies, namespace: str, name: str) -> None:
    cluster.bodies[(namespace, name)] = body(namespace, name)
    scheduler.watched(MODEL_MONITOR.kind, "ADDED", body(namespace, name))


async def test_a_namespace_that_never_answers_does_not_hold_another_namespaces_tick() -> None:
    tenants, cluster, clock = Tenants(), Bodies(), [100.0]
    scheduler = scheduler_for(tenants, cluster, clock, slots=6, per_namespace=4)
    for i in range(12):
        watch(scheduler, cluster, "slow", f"m{i}")
    watch(scheduler, cluster, "fast", "canary")
    tenants.gate("fast").set()
    assert scheduler.start_due(LOGGER) == 13
    await asyncio.wait_for(tenants.finished.wait(), timeout=30)
    assert tenants.done == ["fast/canary"]
    assert tenants.most["slow"] == 4  # its own share of the slots, the rest of its ticks wait behind it
    tenants.gate("slow").set()
    await scheduler.stop()


async def test_each_resource_ticks_once_per_interval_and_never_twice_at_once() -> None:
    tenants, cluster, clock = Tenants(), Bodies(), [100.0]
    scheduler = scheduler_for(tenants, cluster, clock)
    watch(scheduler, cluster, "ml", "fraud")
    assert scheduler.start_due(LOGGER) == 1
    clock[0] += 10.0
    assert scheduler.start_due(LOGGER) == 0  # still in flight: not started again
    tenants.gate("ml").set()
    await asyncio.wait_for(tenants.finished.wait(), timeout=30)
    await asyncio.wait_for(released(scheduler), timeout=30)
    clock[0] = 104.0
    assert scheduler.start_due(LOGGER) == 0  # the interval since it started has not passed
    clock[0] = 105.0
    assert scheduler.start_due(LOGGER) == 1
    await scheduler.stop()


async def test_a_deleted_resource_is_forgotten() -> None:
    tenants, cluster, clock = Tenants(), Bodies(), [100.0]
    scheduler = scheduler_for(tenants, cluster, clock)
    watch(scheduler, cluster, "ml", "fraud")
    scheduler.watched(MODEL_MONITOR.kind, "DELETED", body("ml", "fraud"))
    assert scheduler.start_due(LOGGER) == 0 and not scheduler.resources


async def test_the_loop_outlives_a_failure_and_says_how_long_since_it_ran() -> None:
    tenants, cluster, clock = Tenants(), Bodies(), [100.0]
    scheduler = scheduler_for(tenants, cluster, clock)
    looks: list[float] = []

    def failing_first(logger: Any) -> int:
        looks.append(clock[0])
        if len(looks) == 1:
            raise RuntimeError("a bug while starting ticks")
        return 0

    scheduler.start_due = failing_first  # type: ignore[method-assign]  # the loop's one step, failing once
    loop = asyncio.create_task(scheduler.run(LOGGER, resolution=0.01))
    try:
        await asyncio.wait_for(_looked(looks, 2), timeout=30)  # it looked again after the failure
        assert scheduler.last_look == 100.0
        clock[0] = 145.0
        assert scheduler.stuck_for() == 45.0  # what the liveness probe compares with STUCK_AFTER
    finally:
        loop.cancel()


async def _looked(looks: list[float], times: int) -> None:
    while len(looks) < times:
        await asyncio.sleep(0.01)


async def test_a_standby_starts_nothing_and_the_new_leader_starts_what_is_due_at_once() -> None:
    tenants, cluster, clock = Tenants(), Bodies(), [100.0]
    leading = [False]
    scheduler = Scheduler(cluster, clock=lambda: clock[0], acting=lambda: leading[0])
    scheduler.add_kind(tenants.steps(), interval=5.0)
    watch(scheduler, cluster, "ml", "fraud")
    for _ in range(3):
        clock[0] += 10.0
        assert scheduler.start_due(LOGGER) == 0
    assert tenants.done == [] and not any(r.in_flight for r in scheduler.resources.values())
    leading[0] = True
    tenants.gate("ml").set()
    assert scheduler.start_due(LOGGER) == 1
    await asyncio.wait_for(tenants.finished.wait(), timeout=30)
    assert tenants.done == ["ml/fraud"]
    await scheduler.stop()
