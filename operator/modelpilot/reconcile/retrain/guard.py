"""The production guard of a RetrainPolicy (spec.rollback): after a promotion, the promoted
version's quality is watched on its monitor; when it stays below the floor, serving returns to
the previous champion through a CanaryRelease, the same safe path a release takes (traffic to
warm pods first, then the alias moved back).

Once per excursion: a guard that rolled back (or tried) waits for quality to recover before it
may act again, and a version reached by a rollback has no "previous" to flip back to until the
next promotion.
"""

from __future__ import annotations

from datetime import datetime

from modelpilot.api import SpecError
from modelpilot.api.retrain import ProductionState, RetrainPolicyStatus

from ..decision import EventToPost
from .builders import build_canary
from .observations import CreateCanary
from .step import PolicyStep

__all__ = ["guard_production", "promoted"]


def promoted(status: RetrainPolicyStatus, version: str, now: datetime, request: str | None) -> ProductionState:
    """What serves after the policy's canary promoted ``version`` over the champion it was compared
    with; a rollback request already there was about an earlier version, so it counts as handled."""
    rollbacks = status.production.rollbacks if status.production else 0
    return ProductionState(
        version=version, previous=status.champion_version, since=now, rollbacks=rollbacks, handled_rollback_request=request
    )


def guard_production(step: PolicyStep, production: ProductionState | None) -> tuple[ProductionState | None, str | None]:
    """The production state after this tick, and a message when the guard is acting."""
    if production is None:
        return production, None
    if production.rollback_canary is not None:
        return _rolling_back(step, production)
    request = step.obs.rollback_annotation
    if request is not None and request != production.handled_rollback_request:
        production = production.model_copy(update={"handled_rollback_request": request})
        if production.previous is None:
            text = f"rollback requested, but version {production.version} replaced no version of this policy's"
            step.events.append(EventToPost("Warning", "RollbackFailed", text))
            return production, text
        return _start(step, production, f"requested ({request}); returning to version {production.previous}")
    guard = step.spec.rollback
    if guard is None:
        return production, None
    monitor = step.obs.monitor
    if (
        monitor is None
        or monitor.last_evaluation is None
        or monitor.last_evaluation == production.last_monitor_evaluation
        or monitor.last_evaluation <= production.since
        or (monitor.version is not None and monitor.version != production.version)
    ):
        return production, None  # nothing new about the promoted version
    value = monitor.quality.get(guard.metric)
    seen = production.model_copy(update={"last_monitor_evaluation": monitor.last_evaluation})
    if value is None:
        return seen, None
    if value >= guard.below:
        return seen.model_copy(update={"streak": 0, "armed": True}), None
    streak = production.streak + 1
    seen = seen.model_copy(update={"streak": streak})
    if streak < guard.for_evaluations or not production.armed or production.previous is None:
        return seen, None
    reason = (
        f"version {production.version}: {guard.metric} {value:.4g} < {guard.below:g} for {streak} evaluations "
        f"after its promotion; returning to version {production.previous}"
    )
    return _start(step, seen, reason)


def _start(step: PolicyStep, production: ProductionState, reason: str) -> tuple[ProductionState | None, str | None]:
    number = production.rollbacks + 1
    name = f"{step.owner.name}-rollback-{number}"
    step.events.append(EventToPost("Warning", "RollbackStarted", f"{reason} (CanaryRelease {name})"))
    started = production.model_copy(
        update={"armed": False, "rollback_canary": name, "rollback_reason": reason, "rollbacks": number}
    )
    return _rolling_back(step, started)


def _rolling_back(step: PolicyStep, production: ProductionState) -> tuple[ProductionState | None, str | None]:
    name, previous = production.rollback_canary, production.previous
    assert name is not None and previous is not None
    phase = step.obs.rollback_phase
    if phase in (None, "Missing"):
        try:
            step.actions.append(CreateCanary(build_canary(step.spec, step.owner, previous, name=name, rollback=True)))
        except SpecError as err:
            text = f"cannot roll back to version {previous}: {err}"
            step.events.append(EventToPost("Warning", "RollbackFailed", text))
            return production.model_copy(update={"rollback_canary": None}), text
        return production, f"rolling back to version {previous}: creating CanaryRelease {name}"
    if phase == "Promoted":
        text = f"rolled back to version {previous}: {production.rollback_reason}"
        step.events.append(EventToPost("Warning", "RolledBackInProduction", text))
        back = ProductionState(
            version=previous,
            previous=None,
            since=step.now,
            rollbacks=production.rollbacks,
            rollback_reason=production.rollback_reason,
            handled_rollback_request=production.handled_rollback_request,
        )
        return back, text
    if phase in ("RolledBack", "Failed"):
        text = f"the rollback to version {previous} ended {phase} (CanaryRelease {name}); version {production.version} serves"
        step.events.append(EventToPost("Warning", "RollbackFailed", text))
        return production.model_copy(update={"rollback_canary": None}), text
    return production, f"rolling back to version {previous}: CanaryRelease {name} is {phase}"
