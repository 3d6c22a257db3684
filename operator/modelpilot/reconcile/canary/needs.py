"""What a CanaryRelease tick must read, decided from the spec and status before anything is read:
the analysis queries when a check is due, the MLflow alias when it matters, the webhooks to call.
Also the helpers that tell which release the status is about."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from modelpilot.api import parse_duration
from modelpilot.api.canary import AnalysisMetric, CanaryReleaseSpec, CanaryReleaseStatus, HookType

from ..owners import ReleaseRef
from .analysis import AGREEMENT, agreement_queries, metric_queries
from .observations import CanaryNeeds, HookCall
from .routes import candidate_name

__all__ = ["GATES", "NOTIFICATIONS", "TERMINAL", "is_due", "judged_metrics", "observation_needs", "shadowing"]

TERMINAL = ("Promoted", "RolledBack", "Completed")
GATES: tuple[HookType, ...] = ("confirm-rollout", "pre-rollout")
NOTIFICATIONS: dict[str, tuple[HookType, ...]] = {
    "Promoted": ("post-rollout",),
    "RolledBack": ("rollback", "post-rollout"),
    "Completed": ("post-rollout",),
}


def is_due(status: CanaryReleaseStatus, generation: int | None, now: datetime) -> bool:
    """Tick now? Always, but for a settled release whose spec has not changed since: it stays quiet."""
    return not (status.settled and status.observed_generation == generation)


def shadowing(status: CanaryReleaseStatus) -> bool:
    """The candidate gets mirrored requests only, and is being judged on them."""
    return status.phase == "Progressing" and status.shadow is not None and status.shadow.decision == "Running"


def judged_metrics(spec: CanaryReleaseSpec, status: CanaryReleaseStatus) -> list[AnalysisMetric]:
    """The analysis metrics a check queries and judges now: in a shadow, all but accuracy
    (mirrored requests get no labels on the candidate's side; accuracy waits for the steps)."""
    in_shadow = shadowing(status)
    return [m for m in spec.analysis.metrics if not (in_shadow and m.builtin == "accuracy")]


def committed(status: CanaryReleaseStatus) -> bool:
    """A release that must finish before a changed candidate may start another: one promoting,
    or one rolled back whose alias is not restored yet."""
    return status.phase == "Promoting" or restoring_alias(status)


def restoring_alias(status: CanaryReleaseStatus) -> bool:
    """A rolled-back release whose alias may have moved: its previous holder was recorded, so the
    move may have been made, observed or not."""
    promotion = status.promotion
    return status.phase == "RolledBack" and promotion is not None and promotion.alias_recorded


def starts_release(spec: CanaryReleaseSpec, status: CanaryReleaseStatus) -> bool:
    return status.phase is None or (status.release != spec.release_id() and not committed(status))


def fresh(spec: CanaryReleaseSpec, previous: CanaryReleaseStatus, ref: ReleaseRef, now: datetime) -> CanaryReleaseStatus:
    """The status of a release about to start: the conditions and history carry over."""
    return CanaryReleaseStatus(
        conditions=previous.conditions,
        history=previous.history,
        phase="Initializing",
        release=spec.release_id(),
        started=now,
        stable_version=spec.target.version,
        candidate_version=spec.candidate_version(),
        candidate_deployment=candidate_name(ref.name),
        canary_weight=0,
        current_step=0,
        steps=len(spec.weights()),
    )


def effective(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, ref: ReleaseRef, now: datetime) -> CanaryReleaseStatus:
    return fresh(spec, status, ref, now) if starts_release(spec, status) else status


def approved(spec: CanaryReleaseSpec) -> bool:
    return spec.promotion == "auto" or spec.promote


def configured(spec: CanaryReleaseSpec, hook: HookType) -> bool:
    return any(w.type == hook for w in spec.webhooks)


def hooks_due(spec: CanaryReleaseSpec, status: CanaryReleaseStatus) -> list[HookType]:
    pending = [h for h in hook_stage(spec, status) if configured(spec, h) and h not in status.hooks_done]
    # Gates are asked one at a time, in order; notifications all at once.
    return pending if status.phase in TERMINAL else pending[:1]


def hook_stage(spec: CanaryReleaseSpec, status: CanaryReleaseStatus) -> tuple[HookType, ...]:
    if status.phase == "Initializing":
        return GATES
    if status.phase == "AwaitingPromotion" and approved(spec):
        return ("confirm-promotion",)
    return NOTIFICATIONS.get(status.phase or "", ())


def payload(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, ref: ReleaseRef, hook: str) -> dict[str, Any]:
    return {
        "type": hook,
        "name": ref.name,
        "namespace": ref.namespace,
        "phase": status.phase,
        "model": spec.model,
        "candidate": status.candidate_version,
        "stable": status.stable_version,
        "step": status.current_step,
        "steps": status.steps,
        "weight": status.canary_weight,
        "release": status.release,
    }


def window(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, now: datetime) -> timedelta:
    """The step's elapsed time, at least analysis.window, in whole seconds."""
    assert status.step_started is not None
    elapsed = max(now - status.step_started, parse_duration(spec.analysis.window))
    return timedelta(seconds=math.ceil(elapsed.total_seconds()))


def observation_needs(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, *, ref: ReleaseRef, now: datetime) -> CanaryNeeds:
    """What the sources must read for this tick, beyond the Deployments and the router."""
    current = effective(spec, status, ref, now)
    due = current.next_check is None or now >= current.next_check
    promotion = current.promotion
    alias = (
        current.stable_version is None
        or (current.phase == "Promoting" and promotion is not None and promotion.stage == "MoveAlias")
        or restoring_alias(current)
    )
    queries = {}
    if current.phase in ("Progressing", "AwaitingPromotion") and current.step_started and due and not spec.abort:
        assert current.stable_version is not None and current.candidate_version is not None
        model, stable, candidate = spec.model, current.stable_version, current.candidate_version
        span = window(spec, current, now)
        metrics = judged_metrics(spec, current)
        queries = metric_queries(metrics, model=model, stable=stable, candidate=candidate, namespace=ref.namespace, window=span)
        if shadowing(current):
            queries[AGREEMENT] = agreement_queries(
                model=model, stable=stable, candidate=candidate, namespace=ref.namespace, window=span
            )
    hooks = tuple(
        HookCall(w.type, w.url_secret.name, w.url_secret.key, parse_duration(w.timeout), payload(spec, current, ref, w.type))
        for hook in (hooks_due(spec, current) if due else [])
        for w in spec.webhooks
        if w.type == hook
    )
    return CanaryNeeds(at=now, queries=queries, alias=alias and spec.mlflow is not None, hooks=hooks)
