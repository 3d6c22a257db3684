"""ModelMonitor: a timer asks each monitor whether it is due; a due one is evaluated in one tick."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import kopf

from modelpilot.api import GROUP, MODEL_MONITOR, VERSION
from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus
from modelpilot.reconcile import MonitorRef
from modelpilot.reconcile.monitor import (
    HASH_ANNOTATION,
    NO_RULE_DEFAULTS,
    PROMETHEUS_RULE,
    MonitorDecision,
    MonitorObservations,
    OwnedAction,
    RuleDefaults,
    decide_monitor,
    is_due,
    owned_to_observe,
)
from modelpilot.sources.kubernetes import KubernetesReader
from modelpilot.sources.monitor import observe_monitor
from modelpilot.sources.owned import apply_owned, observe_owned, rule_audience

from .metrics import MONITORS
from .scheduler import schedule
from .tick import TickSteps

__all__ = ["MONITOR_TICK", "TICK_SECONDS", "set_rule_defaults"]

# How often each monitor is asked whether it is due; its own interval and backoff live in status.
TICK_SECONDS = 5.0
KUBE = KubernetesReader()
# What `modelpilot run --rule-label/--runbook-url` adds to every monitor's alert rules.
_RULE_DEFAULTS = [NO_RULE_DEFAULTS]


def set_rule_defaults(defaults: RuleDefaults) -> None:
    _RULE_DEFAULTS[0] = defaults


async def _observe(
    spec: ModelMonitorSpec, status: ModelMonitorStatus, ref: MonitorRef, annotations: Mapping[str, str], now: datetime
) -> MonitorObservations:
    obs = await observe_monitor(spec, namespace=ref.namespace, at=now, kube=KUBE, monitor=ref.name)
    kinds = owned_to_observe(spec, status, ref.name)
    owned = await observe_owned(ref.namespace, kinds, HASH_ANNOTATION)
    audience = await rule_audience(ref.namespace) if PROMETHEUS_RULE in owned and spec.alerting.prometheus_rule else None
    return replace(obs, owned=owned, audience=audience)


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
    return decide_monitor(spec, status, obs, generation=generation, now=now, owner=ref, rule_defaults=_RULE_DEFAULTS[0])


async def _apply(spec: ModelMonitorSpec, ref: MonitorRef, actions: Sequence[OwnedAction]) -> list[str]:
    return await apply_owned(ref.namespace, actions)


def _publish(ref: MonitorRef, spec: ModelMonitorSpec, status: ModelMonitorStatus) -> None:
    MONITORS.update(ref.namespace, ref.name, spec.model.name, status)


MONITOR_TICK = TickSteps(
    kind=MODEL_MONITOR, ref=MonitorRef, observe=_observe, decide=_decide, apply=_apply, due=is_due, publish=_publish
)


schedule(MONITOR_TICK, TICK_SECONDS)


@kopf.on.delete(GROUP, VERSION, MODEL_MONITOR.plural, id="forget-modelmonitor-results", optional=True)
async def forget_results(meta: kopf.Meta, **_: Any) -> None:
    MONITORS.forget(meta["namespace"], meta["name"])
