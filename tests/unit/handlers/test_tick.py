"""The one tick every kind runs: its order, and its conflict policy, against a recording cluster."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.api import MODEL_MONITOR, Kind
from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus
from modelpilot.handlers.tick import TickSteps, run_tick
from modelpilot.reconcile import Decision, EventToPost, MonitorRef, OwnerRef

NOW = datetime(2026, 3, 1, tzinfo=UTC)
SPEC = {"model": {"name": "fraud"}, "prometheus": {"url": "http://prometheus:9090"}}


class RecordingCluster:
    """Stands in for the API server: serves one stored body and records what the tick does."""

    def __init__(self, body: dict[str, Any], *, accept_writes: bool = True):
        self.body, self.accept_writes = body, accept_writes
        self.log: list[str] = []
        self.written: list[dict[str, Any]] = []

    async def read(self, kind: Kind[Any, Any], ref: OwnerRef) -> Mapping[str, Any]:
        self.log.append("read")
        return self.body

    async def write_status(self, kind: Kind[Any, Any], ref: OwnerRef, resource_version: str, patch: dict[str, Any]) -> bool:
        self.log.append(f"write {resource_version} {sorted(patch)}")
        self.written.append({**self.body.get("status", {}), **patch})
        return self.accept_writes

    async def post_event(self, body: Mapping[str, Any], event: EventToPost) -> None:
        self.log.append(f"event {event.reason}")


def body(status: dict[str, Any] | None = None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    meta = {"namespace": "ml", "name": "fraud", "uid": "u1", "generation": 2, "resourceVersion": "41"}
    return {"metadata": meta, "spec": spec or SPEC, "status": status or {}}


def steps(log: list[str], *, due: bool = True) -> TickSteps[ModelMonitorSpec, ModelMonitorStatus, str, str, MonitorRef]:
    async def observe(
        spec: ModelMonitorSpec, status: ModelMonitorStatus, ref: MonitorRef, annotations: Mapping[str, str], now: datetime
    ) -> str:
        log.append("observe")
        return "seen"

    def decide(
        spec: ModelMonitorSpec,
        previous: ModelMonitorStatus,
        obs: str,
        /,
        *,
        ref: MonitorRef,
        generation: int | None,
        now: datetime,
    ) -> Decision[ModelMonitorStatus, str]:
        log.append(f"decide {obs} generation {generation}")
        status = previous.model_copy(update={"observed_generation": generation, "last_evaluation": now})
        return Decision(status=status, actions=["create the Job"], events=[EventToPost("Normal", "Evaluated", "done")])

    async def apply(spec: ModelMonitorSpec, ref: MonitorRef, actions: Sequence[str]) -> list[str]:
        log.append(f"apply {list(actions)}")
        return []

    return TickSteps(kind=MODEL_MONITOR, ref=MonitorRef, observe=observe, decide=decide, apply=apply, due=lambda *_: due)


async def test_status_is_written_before_the_actions_and_events() -> None:
    cluster = RecordingCluster(body())
    decision = await run_tick(steps(cluster.log), body(), cluster, logger=logging.getLogger("test"), now=NOW)
    assert decision is not None and decision.status.observed_generation == 2
    expected_write = sorted(decision.status.to_body())  # the stored status was empty: every key is new
    assert cluster.log == [
        "read",
        "observe",
        "decide seen generation 2",
        f"write 41 {expected_write}",
        "apply ['create the Job']",
        "event Evaluated",
    ]


async def test_a_conflicting_write_keeps_nothing_of_the_tick() -> None:
    cluster = RecordingCluster(body(), accept_writes=False)
    decision = await run_tick(steps(cluster.log), body(), cluster, logger=logging.getLogger("test"), now=NOW)
    assert decision is None
    assert cluster.log[-1].startswith("write 41")  # tried, refused: no action, no Event after it


async def test_a_resource_that_is_not_due_costs_no_request() -> None:
    cluster = RecordingCluster(body())
    assert await run_tick(steps(cluster.log, due=False), body(), cluster, logger=logging.getLogger("test"), now=NOW) is None
    assert cluster.log == []


async def test_an_invalid_spec_is_refused_once_and_nothing_is_observed() -> None:
    invalid = body(spec={"model": {}})
    cluster = RecordingCluster(invalid)
    assert await run_tick(steps(cluster.log), invalid, cluster, logger=logging.getLogger("test"), now=NOW) is None
    assert cluster.log == ["read", "write 41 ['conditions', 'observedGeneration']"]
    [ready] = cluster.written[0]["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
    assert ready["message"].startswith("spec.model.name:")
    # Already said (by admission or an earlier tick): nothing more is written.
    said = RecordingCluster(body(spec={"model": {}}, status=cluster.written[0]))
    assert await run_tick(steps(said.log), said.body, said, logger=logging.getLogger("test"), now=NOW) is None
    assert said.log == ["read"]


async def test_an_unchanged_status_is_not_written_but_actions_still_run() -> None:
    written = ModelMonitorStatus(observed_generation=2, last_evaluation=NOW).to_body()
    cluster = RecordingCluster(body(status=written))
    await run_tick(steps(cluster.log), body(status=written), cluster, logger=logging.getLogger("test"), now=NOW)
    assert not any(entry.startswith("write") for entry in cluster.log)
    assert "apply ['create the Job']" in cluster.log


async def test_an_unexpected_error_says_so_in_ready_and_backs_off() -> None:
    log: list[str] = []
    broken = replace(steps(log), decide=_raising)
    cluster = RecordingCluster(body())
    logger = logging.getLogger("test")
    await run_tick(broken, body(), cluster, logger=logger, now=NOW)
    written = cluster.log[-1]
    assert written.startswith("write 41") and "retryAfter" in written and "tickErrors" in written
    failed = ModelMonitorStatus.model_validate(cluster.written[-1])
    ready = next(c for c in failed.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("Unknown", "TickFailed")
    assert ready.message == "OverflowError: a number nobody foresaw; retrying in 5s"
    assert failed.tick_errors == 1 and failed.retry_after == NOW + timedelta(seconds=5)

    # Until then no tick asks anything; the second failure waits twice as long.
    stored = body(status=failed.to_body())
    cluster = RecordingCluster(stored)
    assert await run_tick(broken, stored, cluster, logger=logger, now=NOW + timedelta(seconds=4)) is None
    assert cluster.log == []
    await run_tick(broken, stored, cluster, logger=logger, now=NOW + timedelta(seconds=5))
    again = ModelMonitorStatus.model_validate(cluster.written[-1])
    assert again.tick_errors == 2 and again.retry_after == NOW + timedelta(seconds=15)

    # A changed spec is tried at once.
    changed = body(status=again.to_body())
    changed["metadata"]["generation"] = 3
    cluster = RecordingCluster(changed)
    await run_tick(broken, changed, cluster, logger=logger, now=NOW + timedelta(seconds=6))
    assert cluster.log[0] == "read"

    # A tick that succeeds clears the backoff.
    cluster = RecordingCluster(body(status=again.to_body()))
    decision = await run_tick(steps(log), body(status=again.to_body()), cluster, logger=logger, now=NOW + timedelta(seconds=15))
    assert decision is not None and decision.status.tick_errors == 0 and decision.status.retry_after is None


def _raising(*args: Any, **kwargs: Any) -> Decision[ModelMonitorStatus, str]:
    raise OverflowError("a number nobody foresaw")
