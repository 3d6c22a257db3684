"""ModelMonitor: a timer that evaluates each monitor when its interval (or backoff) says so."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from modelpilot.api import GROUP, MODEL_MONITOR, VERSION, SpecError, load_spec, load_status, now_utc
from modelpilot.reconcile import merge_patch
from modelpilot.reconcile.monitor import evaluate_monitor, is_due
from modelpilot.sources.kubernetes import KubernetesReader
from modelpilot.sources.observe import gather_monitor_observations

from .metrics import MONITORS, STATES

__all__ = ["TICK_SECONDS"]

# How often each monitor is asked whether it is due; its own interval and backoff live in status.
TICK_SECONDS = 5.0
KUBE = KubernetesReader()


@kopf.timer(GROUP, VERSION, MODEL_MONITOR.plural, interval=TICK_SECONDS, id="evaluate-modelmonitor")
async def evaluate_when_due(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    try:
        monitor = load_spec(MODEL_MONITOR, spec)
    except SpecError:
        return  # admission already reported it in Ready
    previous = load_status(MODEL_MONITOR, status)
    now, generation = now_utc(), meta.get("generation")
    if not is_due(previous, generation, now):
        return
    namespace, name = meta["namespace"], meta["name"]
    observations = await gather_monitor_observations(monitor, namespace=namespace, at=now, kube=KUBE)
    # The statistics are CPU work: keep them off the event loop that serves every other resource.
    result = await asyncio.to_thread(evaluate_monitor, monitor, observations, previous, generation=generation, now=now)
    patch.status.update(merge_patch(dict(status), result.status.to_body()))
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    MONITORS.update(namespace, name, monitor.model.name, result.status)
    STATES.update(MODEL_MONITOR.kind, namespace, name, result.status.conditions)


@kopf.on.delete(GROUP, VERSION, MODEL_MONITOR.plural, id="forget-modelmonitor-results", optional=True)
async def forget_results(meta: kopf.Meta, **_: Any) -> None:
    MONITORS.forget(meta["namespace"], meta["name"])
