"""ModelMonitor: a timer asks each monitor whether it is due; a due one is evaluated in one tick."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf

from modelpilot.api import GROUP, MODEL_MONITOR, VERSION
from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus
from modelpilot.reconcile import MonitorRef
from modelpilot.reconcile.monitor import (
    MonitorDecision,
    MonitorObservations,
    decide_monitor,
    is_due,
)
from modelpilot.sources.kubernetes import KubernetesReader
from modelpilot.sources.monitor import observe_monitor

from .metrics import MONITORS
from .scheduler import schedule
from .tick import TickSteps, no_actions

__all__ = ["MONITOR_TICK", "TICK_SECONDS"]

# How often each monitor is asked whether it is due; its own interval and backoff live in status.
TICK_SECONDS = 5.0
KUBE = KubernetesReader()


async def _observe(
    spec: ModelMonitorSpec, status: ModelMonitorStatus, ref: MonitorRef, annotations: Mapping[str, str], now: datetime
) -> MonitorObservations:
    return await observe_monitor(spec, namespace=ref.namespace, at=now, kube=KUBE)


def _decide(
    spec: ModelMonitorSpec,
    status: ModelMonitorStatus,
    obs: MonitorObservations,
    /,
    *,
    ref: MonitorRef,
    generation: int | None,
    now: datetime,
) -> MonitorDecision:
    # A monitor's decision needs no identity: its only effects are status, Events and gauges.
    return decide_monitor(spec, status, obs, generation=generation, now=now)


def _publish(ref: MonitorRef, spec: ModelMonitorSpec, status: ModelMonitorStatus) -> None:
    MONITORS.update(ref.namespace, ref.name, spec.model.name, status)


MONITOR_TICK = TickSteps(
    kind=MODEL_MONITOR, ref=MonitorRef, observe=_observe, decide=_decide, apply=no_actions, due=is_due, publish=_publish
)


schedule(MONITOR_TICK, TICK_SECONDS)


@kopf.on.delete(GROUP, VERSION, MODEL_MONITOR.plural, id="forget-modelmonitor-results", optional=True)
async def forget_results(meta: kopf.Meta, **_: Any) -> None:
    MONITORS.forget(meta["namespace"], meta["name"])
