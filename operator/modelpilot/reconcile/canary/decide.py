"""CanaryRelease decisions: from the spec, the status and one tick's observations to the new
status, the plan of what must be true in the cluster, and the Events of the transitions.

Level-triggered: the plan (candidate Deployment and replicas, router weight, stable restart
annotation, MLflow alias) is computed from the new status alone, so applying it again, after a
crash or on every tick, changes nothing. The handler writes the status before it applies the
plan; a one-time effect is therefore recorded before it is made (the alias's previous holder,
the restart annotation's value) and noticed as made by observing it (the alias points at the
candidate, the stable rollout is complete), never by remembering having made it.

Phases: Initializing (stable version resolved, gates confirm-rollout and pre-rollout, candidate
warm) -> Progressing (one step per weight; a check every interval) -> AwaitingPromotion
(approval and confirm-promotion; checks go on) -> Promoting (ShiftTraffic: traffic on warm
candidate pods; MoveAlias; RestartStable: the stable pods restart onto the new champion) ->
Promoted (traffic back on stable, candidate scaled to zero). Any failure limit or spec.abort
before the stable restart -> RolledBack (traffic on stable at once, candidate to zero, alias
restored when it had moved).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelpilot.api import Condition, ConditionStatus
from modelpilot.api.canary import CanaryReleaseSpec, CanaryReleaseStatus, RollbackReason

from ..conditions import ConditionValue, find_condition, set_condition
from ..decision import Decision
from ..owners import ReleaseRef
from ..pod_policy import OPT_IN_LABEL, opted_in
from .needs import payload, starts_release
from .observations import CanaryAction, CanaryObservations, Notification
from .phases import HELD, ReleaseTick
from .plan import build_plan
from .routes import candidate_name

__all__ = ["CONDITION_TYPES", "CanaryDecision", "decide_canary"]

CONDITION_TYPES = ("Ready", "Progressing", "Promoted", "RolledBack", "Paused")
# Problems that will not pass by themselves; the others (API or registry errors) may.
LASTING = (
    "StableNotFound",
    "StableNotOptedIn",
    "StableServiceNotFound",
    "RouteNotFound",
    "NoStableVersion",
    "SameVersion",
    "CandidateNameTaken",
)

CanaryDecision = Decision[CanaryReleaseStatus, CanaryAction]


def _not_ours(obs: CanaryObservations, ref: ReleaseRef) -> str | None:
    """Why the release may not write its candidate objects: one exists under the name it would
    use and another owner (or none) controls it. Such an object is never modified."""
    service_exists, service_owner = obs.candidate_service
    taken = [
        f"{what} {candidate_name(ref.name)}"
        for what, exists, owner in (
            ("Deployment", obs.candidate is not None, obs.candidate.controller_uid if obs.candidate else None),
            ("Service", service_exists, service_owner),
        )
        if exists and owner != ref.uid
    ]
    if not taken:
        return None
    return f"{' and '.join(taken)} exist(s) and belong to someone else: rename or remove them; this release changes nothing"


def _conditions(tick: ReleaseTick, generation: int | None) -> list[Condition]:
    s = tick.status
    held = s.phase in ("Progressing", "AwaitingPromotion") and s.last_check in HELD
    last = s.last_analysis
    held_message = next((f"{r.metric}: {r.verdict}: {r.message}" for r in last if tick.with_policy(r.verdict) in HELD), "")
    progress = _progress_line(tick)
    ready: ConditionValue
    progressing: ConditionValue
    if tick.blocked is not None:
        reason, message = tick.blocked
        status: ConditionStatus = "False" if reason in LASTING else "Unknown"
        ready, progressing = (status, reason, message), ("Unknown", reason, message)
    elif s.phase == "RolledBack":
        assert s.rollback is not None
        ready = progressing = ("False", "RolledBack", s.rollback.message)
    elif s.phase in ("Promoted", "Completed"):
        ready = ("True", s.phase, progress)
        progressing = ("False", s.phase, progress)
    elif held:
        ready = progressing = ("Unknown", "AnalysisHeld", f"{progress}; held: {held_message}")
    else:
        ready = ("True", s.phase or "Initializing", progress)
        progressing = ("True", s.phase or "Initializing", progress)
    paused: ConditionValue = ("True", *tick.waiting) if tick.waiting else ("False", "NotPaused", "")
    rolled_back: ConditionValue = ("False", "NotRolledBack", "")
    if s.phase == "RolledBack" and s.rollback:
        rolled_back = ("True", s.rollback.reason, s.rollback.message)
    promoted: ConditionValue = ("True", "Promoted", progress) if s.phase == "Promoted" else ("False", "NotPromoted", "")
    values = {"Ready": ready, "Progressing": progressing, "Promoted": promoted, "RolledBack": rolled_back, "Paused": paused}
    conditions = list(s.conditions)
    for type_ in CONDITION_TYPES:
        status_, reason, message = values[type_]
        conditions = set_condition(
            conditions,
            type_,
            status_,
            reason,
            message,
            now=tick.now,
            generation=generation,
        )
    return conditions


def _progress_line(tick: ReleaseTick) -> str:
    s = tick.status
    actual = "" if tick.obs.actual_weight is None else f", actual {tick.obs.actual_weight:.0f}%"
    text = {
        "Initializing": f"preparing version {s.candidate_version} against stable {s.stable_version}",
        "Progressing": f"{tick.where()} to version {s.candidate_version}{actual}",
        "AwaitingPromotion": f"all {s.steps} steps passed for version {s.candidate_version}",
        "Promoting": f"promoting version {s.candidate_version}: {s.promotion.stage if s.promotion else ''}",
        "Promoted": f"version {s.candidate_version} promoted; stable serves it",
        "Completed": f"version {s.candidate_version} passed its shadow and was not promoted (spec.shadow.then: stop)",
    }.get(s.phase or "", "")
    return f"{text}; {tick.note}" if tick.note else text


def decide_canary(
    spec: CanaryReleaseSpec,
    previous: CanaryReleaseStatus,
    obs: CanaryObservations,
    *,
    ref: ReleaseRef,
    generation: int | None,
    now: datetime,
) -> CanaryDecision:
    """The new status, the plan and the Events for one tick."""
    tick = ReleaseTick(spec, previous, obs, ref, now)
    if starts_release(spec, previous):
        tick.start()
    if obs.problem is not None:
        tick.blocked = obs.problem
    elif obs.stable is not None and not opted_in(obs.stable.labels):
        # The candidate runs as the stable's pods do (service account, Secrets) and takes
        # production traffic: the Deployment's owners must have said yes.
        tick.blocked = (
            "StableNotOptedIn",
            f"Deployment {obs.stable.name} is not labelled {OPT_IN_LABEL}=true; its owners label it to let "
            "releases run candidates from its pod template; this release changes nothing",
        )
    elif (taken := _not_ours(obs, ref)) is not None:
        tick.blocked = ("CandidateNameTaken", taken)
    elif tick.stable_version():
        if spec.abort and tick.abortable():
            s = tick.status
            tick.roll_back(
                RollbackReason(
                    reason="Aborted",
                    step=s.current_step or 0,
                    weight=s.canary_weight or 0,
                    time=now,
                    message=f"aborted at {tick.where()} by spec.abort",
                )
            )
        elif tick.status.phase == "Initializing":
            tick.initializing()
        elif tick.status.phase in ("Progressing", "AwaitingPromotion"):
            tick.analysing()
        elif tick.status.phase == "Promoting":
            tick.promoting()
        else:
            tick.finished()
    plan = build_plan(tick) if tick.blocked is None else None
    if tick.blocked is not None:
        ready = find_condition(previous.conditions, "Ready")
        if ready is None or ready.reason != tick.blocked[0]:
            tick.event("Warning", *tick.blocked)
    tick.update(
        observed_generation=generation,
        actual_weight=None if obs.actual_weight is None else round(obs.actual_weight, 1),
    )
    tick.update(conditions=_conditions(tick, generation))
    notifications: list[dict[str, Any]] = []
    if any(w.type == "event" for w in spec.webhooks):
        for event in tick.events:
            body = payload(spec, tick.status, ref, "event")
            text = f"{ref.namespace}/{ref.name}: {event.reason}: {event.message}"
            notifications.append({**body, "reason": event.reason, "text": text})
    actions: list[CanaryAction] = [plan] if plan is not None else []
    if notifications:
        actions.append(Notification(tuple(notifications)))
    return Decision(status=tick.status, actions=actions, events=tick.events)
