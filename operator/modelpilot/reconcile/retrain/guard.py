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
from .observations import PRODUCTION_TAG_PREFIX, ROLLED_BACK_TAG, SERVED_TAG, CreateCanary, TagVersion
from .step import PolicyStep

__all__ = ["guard_production", "production_tags", "promoted"]


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
        # `modelpilot versions rollback --to VERSION` appends ";to=VERSION": return there instead.
        target = request.partition(";to=")[2] or production.previous
        production = production.model_copy(update={"handled_rollback_request": request, "previous": target})
        if production.previous is None:
            text = f"rollback requested, but version {production.version} replaced no version of this policy's"
            step.events.append(EventToPost("Warning", "RollbackFailed", text))
            return production, text
        return _start(step, production, f"requested ({request}); returning to version {production.previous}")
    production, quality = _observed(step, production)
    guard = step.spec.rollback
    value = quality.get(guard.metric) if guard is not None and quality is not None else None
    if guard is None or value is None:
        return production, None
    if value >= guard.below:
        return production.model_copy(update={"streak": 0, "armed": True}), None
    streak = production.streak + 1
    production = production.model_copy(update={"streak": streak})
    if streak < guard.for_evaluations or not production.armed or production.previous is None:
        return production, None
    reason = (
        f"version {production.version}: {guard.metric} {value:.4g} < {guard.below:g} for {streak} evaluations "
        f"after its promotion; returning to version {production.previous}"
    )
    return _start(step, production, reason)


def _observed(step: PolicyStep, production: ProductionState) -> tuple[ProductionState, dict[str, float] | None]:
    """The state after counting the monitor's evaluation when it is a new one of the serving
    version (its quality folded into the running means), and that evaluation's quality."""
    monitor = step.obs.monitor
    if (
        monitor is None
        or monitor.last_evaluation is None
        or monitor.last_evaluation == production.last_monitor_evaluation
        or monitor.last_evaluation <= production.since
        or (monitor.version is not None and monitor.version != production.version)
    ):
        return production, None  # nothing new about the serving version
    quality = {metric: value for metric, value in monitor.quality.items() if value is not None}
    count = production.evaluations + 1 if quality else production.evaluations
    means = dict(production.quality)
    for metric, value in quality.items():
        seen = production.evaluations if metric in means else 0
        means[metric] = (means.get(metric, 0.0) * seen + value) / (seen + 1)
    update = {"last_monitor_evaluation": monitor.last_evaluation, "evaluations": count, "quality": means}
    return production.model_copy(update=update), quality


def production_tags(production: ProductionState, until: datetime, rolled_back: str | None = None) -> TagVersion:
    """What a version showed while it served, for its registry entry, once it stops serving."""
    tags = {SERVED_TAG: f"{production.since.isoformat()} to {until.isoformat()} ({production.evaluations} evaluations)"}
    tags.update({f"{PRODUCTION_TAG_PREFIX}{metric}": f"{value:.4g}" for metric, value in sorted(production.quality.items())})
    if rolled_back is not None:
        tags[ROLLED_BACK_TAG] = rolled_back[:5000]
    return TagVersion(production.version, tags)


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
        step.actions.append(production_tags(production, step.now, rolled_back=production.rollback_reason))
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
