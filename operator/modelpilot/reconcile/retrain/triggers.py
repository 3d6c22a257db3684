"""Triggers of a RetrainPolicy: performance and drift from its monitor (edge-detected, once per
excursion), the schedule (interval or cron), and manual requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from modelpilot.api import parse_duration
from modelpilot.api.cron import next_cron_time
from modelpilot.api.retrain import PerformanceTrigger, RetrainPolicySpec, TriggerState

from .observations import MonitorView, RetrainObservations

__all__ = ["Fired", "disarmed", "manual_token", "monitor_triggers", "next_schedule"]


@dataclass(frozen=True)
class Fired:
    """A trigger that fired, and why."""

    type: Literal["performance", "drift", "schedule", "manual"]
    reason: str


def manual_token(spec: RetrainPolicySpec, obs: RetrainObservations) -> str | None:
    parts = [spec.triggers.manual.request, obs.manual_annotation]
    return "|".join(p or "" for p in parts) if any(parts) else None


def monitor_triggers(
    spec: RetrainPolicySpec, state: TriggerState, monitor: MonitorView | None
) -> tuple[TriggerState, list[Fired]]:
    """Advance the edge detectors on a new monitor evaluation; an armed detector whose condition
    holds fires. It is disarmed only when its firing starts a run (see ``disarmed``), so a
    trigger held back by the cooldown or a busy policy fires once that is over."""
    if monitor is None or monitor.last_evaluation is None or monitor.last_evaluation == state.last_monitor_evaluation:
        return state, []
    fired: list[Fired] = []
    streak, armed_perf, armed_drift = state.performance_streak, state.performance_armed, state.drift_armed
    performance = spec.triggers.performance
    if performance is not None:
        below = _below(performance, monitor)
        if below:
            streak += 1
            if armed_perf and streak >= performance.sustained_evaluations:
                what = ", ".join(f"{m} {v:.4g} < {t:g}" for m, (v, t) in below.items())
                fired.append(Fired("performance", f"{what} for {streak} evaluations"))
        elif below is not None:
            streak, armed_perf = 0, True
    drift = spec.triggers.drift
    if drift is not None:
        drifted = sorted(n for n, psi in monitor.feature_psi.items() if psi >= drift.psi_threshold)
        label = bool(drift.label_drift and monitor.label_drift)
        if len(drifted) >= drift.min_features or label:
            if armed_drift:
                what = f"PSI >= {drift.psi_threshold:g} on {', '.join(drifted) or 'no feature'}"
                fired.append(Fired("drift", what + ("; label drift" if label else "")))
        else:
            armed_drift = True
    return (
        TriggerState(
            last_monitor_evaluation=monitor.last_evaluation,
            performance_streak=streak,
            performance_armed=armed_perf,
            drift_armed=armed_drift,
        ),
        fired,
    )


def _below(trigger: PerformanceTrigger, monitor: MonitorView) -> dict[str, tuple[float, float]] | None:
    """The metrics below their thresholds (value, threshold) when the trigger's condition holds,
    {} when it does not, None when the monitor has not measured what it needs."""
    limits = trigger.limits()
    values = {m: monitor.quality.get(m) for m in limits}
    known = {m: v for m, v in values.items() if v is not None}
    below = {m: (v, limits[m]) for m, v in known.items() if v < limits[m]}
    if trigger.combine == "all" and len(limits) > 1:
        if len(below) == len(limits):
            return below
        # Not all below: only a metric measured at or above its threshold says so for sure.
        return {} if len(known) > len(below) else None
    if below:
        return below
    return {} if known else None


def disarmed(state: TriggerState, fired: Sequence[Fired]) -> TriggerState:
    types = {f.type for f in fired}
    return state.model_copy(
        update={
            "performance_armed": state.performance_armed and "performance" not in types,
            "drift_armed": state.drift_armed and "drift" not in types,
        }
    )


def next_schedule(spec: RetrainPolicySpec, after: datetime) -> datetime | None:
    schedule = spec.triggers.schedule
    if schedule is None:
        return None
    if schedule.cron is not None:
        return next_cron_time(schedule.cron, max(after, schedule.start_time or after))
    assert schedule.interval is not None
    interval = parse_duration(schedule.interval)
    if schedule.start_time is None:
        return after + interval
    if after < schedule.start_time:
        return schedule.start_time
    periods = (after - schedule.start_time) // interval + 1
    return schedule.start_time + periods * interval
