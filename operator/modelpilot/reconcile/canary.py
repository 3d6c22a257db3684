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

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from modelpilot.api import Condition, ConditionStatus, parse_duration
from modelpilot.api.canary import (
    CanaryAnalysisRecord,
    CanaryReleaseSpec,
    CanaryReleaseStatus,
    CheckCounters,
    CheckVerdict,
    HookType,
    PromotionProgress,
    ReleaseRecord,
    RollbackReason,
)
from modelpilot.sources.canary import (
    RESTART_ANNOTATION,
    AliasTarget,
    CanaryNeeds,
    CanaryObservations,
    CanaryPlan,
    HookCall,
)
from modelpilot.sources.routers import candidate_name, candidate_replicas

from .canary_analysis import judge_metric, metric_queries, worst
from .canary_objects import VERSION_LABEL, ReleaseRef, build_candidate_deployment, build_candidate_service
from .conditions import find_condition, set_condition
from .monitor import EventToPost

__all__ = [
    "CONDITION_TYPES",
    "HISTORY_LIMIT",
    "CanaryResult",
    "observation_needs",
    "reconcile_canary",
]

CONDITION_TYPES = ("Ready", "Progressing", "Promoted", "RolledBack", "Paused")
HISTORY_LIMIT = 20
TERMINAL = ("Promoted", "RolledBack")
GATES: tuple[HookType, ...] = ("confirm-rollout", "pre-rollout")
NOTIFICATIONS: dict[str, tuple[HookType, ...]] = {"Promoted": ("post-rollout",), "RolledBack": ("rollback", "post-rollout")}
HELD: tuple[CheckVerdict, ...] = ("QueryError", "NoData")
# Problems that will not pass by themselves; the others (API or registry errors) may.
LASTING = ("StableNotFound", "StableServiceNotFound", "RouteNotFound", "NoStableVersion", "SameVersion")


@dataclass(frozen=True)
class CanaryResult:
    """The new status; the plan to apply after writing it (None: touch nothing); the Events of
    this tick's transitions and their event-webhook bodies."""

    status: CanaryReleaseStatus
    plan: CanaryPlan | None
    events: list[EventToPost] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)


# --- what a tick must read ----------------------------------------------------------------


def _committed(status: CanaryReleaseStatus) -> bool:
    """A release that must finish before a changed candidate may start another: one promoting,
    or one rolled back whose alias is not restored yet."""
    return status.phase == "Promoting" or _restoring_alias(status)


def _restoring_alias(status: CanaryReleaseStatus) -> bool:
    """A rolled-back release whose alias may have moved: its previous holder was recorded, so the
    move may have been made, observed or not."""
    promotion = status.promotion
    return status.phase == "RolledBack" and promotion is not None and promotion.alias_recorded


def _starts_release(spec: CanaryReleaseSpec, status: CanaryReleaseStatus) -> bool:
    return status.phase is None or (status.release != spec.release_id() and not _committed(status))


def _fresh(spec: CanaryReleaseSpec, previous: CanaryReleaseStatus, ref: ReleaseRef, now: datetime) -> CanaryReleaseStatus:
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


def _effective(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, ref: ReleaseRef, now: datetime) -> CanaryReleaseStatus:
    return _fresh(spec, status, ref, now) if _starts_release(spec, status) else status


def _approved(spec: CanaryReleaseSpec) -> bool:
    return spec.promotion == "auto" or spec.promote


def _configured(spec: CanaryReleaseSpec, hook: HookType) -> bool:
    return any(w.type == hook for w in spec.webhooks)


def _hooks_due(spec: CanaryReleaseSpec, status: CanaryReleaseStatus) -> list[HookType]:
    pending = [h for h in _hook_stage(spec, status) if _configured(spec, h) and h not in status.hooks_done]
    # Gates are asked one at a time, in order; notifications all at once.
    return pending if status.phase in TERMINAL else pending[:1]


def _hook_stage(spec: CanaryReleaseSpec, status: CanaryReleaseStatus) -> tuple[HookType, ...]:
    if status.phase == "Initializing":
        return GATES
    if status.phase == "AwaitingPromotion" and _approved(spec):
        return ("confirm-promotion",)
    return NOTIFICATIONS.get(status.phase or "", ())


def _payload(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, ref: ReleaseRef, hook: str) -> dict[str, Any]:
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


def _window(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, now: datetime) -> timedelta:
    """The step's elapsed time, at least analysis.window, in whole seconds."""
    assert status.step_started is not None
    elapsed = max(now - status.step_started, parse_duration(spec.analysis.window))
    return timedelta(seconds=math.ceil(elapsed.total_seconds()))


def observation_needs(spec: CanaryReleaseSpec, status: CanaryReleaseStatus, *, ref: ReleaseRef, now: datetime) -> CanaryNeeds:
    """What the sources must read for this tick, beyond the Deployments and the router."""
    current = _effective(spec, status, ref, now)
    due = current.next_check is None or now >= current.next_check
    promotion = current.promotion
    alias = (
        current.stable_version is None
        or (current.phase == "Promoting" and promotion is not None and promotion.stage == "MoveAlias")
        or _restoring_alias(current)
    )
    queries = {}
    if current.phase in ("Progressing", "AwaitingPromotion") and current.step_started and due and not spec.abort:
        assert current.stable_version is not None and current.candidate_version is not None
        queries = metric_queries(
            spec.analysis.metrics, model=spec.model, stable=current.stable_version,
            candidate=current.candidate_version, namespace=ref.namespace, window=_window(spec, current, now),
        )
    hooks = tuple(
        HookCall(w.type, w.url_secret.name, w.url_secret.key, parse_duration(w.timeout), _payload(spec, current, ref, w.type))
        for hook in (_hooks_due(spec, current) if due else [])
        for w in spec.webhooks
        if w.type == hook
    )
    return CanaryNeeds(at=now, queries=queries, alias=alias and spec.mlflow is not None, hooks=hooks)


# --- the decision -------------------------------------------------------------------------


class _Tick:
    """One tick's decision in the making: the status so far, the Events, what waits and why."""

    def __init__(
        self, spec: CanaryReleaseSpec, previous: CanaryReleaseStatus, obs: CanaryObservations, ref: ReleaseRef, now: datetime
    ):
        self.spec, self.previous, self.obs, self.ref, self.now = spec, previous, obs, ref, now
        self.status = previous
        self.events: list[EventToPost] = []
        self.blocked: tuple[str, str] | None = None
        self.waiting: tuple[str, str] | None = None
        self.note = ""

    # -- helpers ---------------------------------------------------------------------------

    def update(self, **changes: Any) -> None:
        self.status = self.status.model_copy(update=changes)

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(EventToPost(type_, reason, message[:1024]))

    @property
    def interval(self) -> timedelta:
        return parse_duration(self.spec.interval)

    @property
    def weights(self) -> list[int]:
        return self.spec.weights()

    def where(self) -> str:
        s = self.status
        return f"step {s.current_step}/{s.steps} ({s.canary_weight}% traffic)"

    def desired(self) -> tuple[int, int]:
        """(candidate replicas, candidate weight) the status asks for."""
        s, stable = self.status, self.obs.stable
        assert stable is not None
        capacity = max(stable.replicas, 1)
        if s.phase == "Initializing":
            warm = self.spec.router.type != "replicas" and all(
                g in s.hooks_done for g in GATES if _configured(self.spec, g)
            )
            return (capacity if warm else 0), 0
        if s.phase in ("Progressing", "AwaitingPromotion"):
            weight = s.canary_weight or 0
            return candidate_replicas(self.spec.router, weight, stable.replicas), weight
        if s.phase == "Promoting":
            # Warm candidate capacity equal to the stable's carries the traffic while the stable restarts.
            return capacity, 100
        return 0, 0

    def candidate_ready(self) -> bool:
        """The candidate Deployment runs this release, rolled out at the wanted replicas."""
        candidate = self.obs.candidate
        replicas, _ = self.desired()
        return (
            candidate is not None
            and candidate.replicas == replicas
            and candidate.rolled_out
            and candidate.labels.get(VERSION_LABEL) == self.status.candidate_version
        )

    def in_place(self) -> bool:
        """The candidate is ready, and the router says the wanted weight."""
        _, weight = self.desired()
        actual = self.obs.actual_weight
        weighted = self.spec.router.type == "replicas" or (actual is not None and abs(actual - weight) < 0.5)
        return weighted and self.candidate_ready()

    def gate(self, hook: HookType) -> bool:
        """Whether gate ``hook`` has passed (or is not configured); records a pass."""
        if not _configured(self.spec, hook) or hook in self.status.hooks_done:
            return True
        answer = self.obs.hooks.get(hook)
        if answer is not None and answer.ok:
            self.update(hooks_done=[*self.status.hooks_done, hook])
            return True
        waiting = f"waiting for the {hook} webhook to answer 2xx"
        if answer is None:  # not asked this tick: what the last answer said still holds
            paused = find_condition(self.previous.conditions, "Paused")
            if paused is not None and paused.reason == "WaitingForHook" and waiting in paused.message:
                waiting = paused.message
        else:
            waiting += f"; it {answer.message}"
            self.update(next_check=self.now + self.interval)
        self.waiting = ("WaitingForHook", waiting)
        return False

    # -- phases ------------------------------------------------------------------------------

    def start(self) -> None:
        previous = self.previous
        self.status = _fresh(self.spec, previous, self.ref, self.now)
        version = self.status.candidate_version
        if previous.phase is not None and previous.phase not in TERMINAL:
            self.event("Normal", "ReleaseRestarted", f"the candidate changed: version {version} starts again from step 1")
        else:
            self.event("Normal", "ReleaseStarted", f"rolling out version {version} in steps {self.weights}")

    def stable_version(self) -> bool:
        """Resolve the stable version once per release; False (and blocked) when it cannot be."""
        s = self.status
        if s.stable_version is None:
            if self.obs.registry_error is not None:
                self.blocked = ("RegistryUnavailable", self.obs.registry_error)
                return False
            if self.obs.alias_holder is None:
                self.blocked = (
                    "NoStableVersion",
                    f"MLflow alias {self.spec.alias!r} of {self.spec.model!r} is not set: set it, or spec.target.version",
                )
                return False
            self.update(stable_version=self.obs.alias_holder)
        if self.status.stable_version == s.candidate_version and self.status.phase == "Initializing":
            self.blocked = ("SameVersion", f"the stable already serves version {s.candidate_version}: nothing to release")
            return False
        return True

    def abortable(self) -> bool:
        s = self.status
        if s.phase in ("Initializing", "Progressing", "AwaitingPromotion"):
            return True
        # Once the stable restarts onto the new champion the promotion is committed.
        return s.phase == "Promoting" and s.promotion is not None and s.promotion.stage != "RestartStable"

    def initializing(self) -> None:
        if not all(self.gate(g) for g in GATES):
            return
        if not self.in_place():
            self.note = "waiting for the candidate Deployment to be ready"
            return
        self.enter_step(1)

    def enter_step(self, step: int) -> None:
        weight = self.weights[step - 1]
        self.update(
            phase="Progressing", current_step=step, canary_weight=weight, step_started=None, next_check=None,
            counters=self.status.counters.model_copy(update={"consecutive_inconclusive": 0}),
        )
        version = self.status.candidate_version
        self.event("Normal", "StepStarted", f"step {step}/{self.status.steps}: {weight}% of traffic to version {version}")

    def analysing(self) -> None:
        s = self.status
        if s.step_started is None:
            if self.in_place():
                self.update(step_started=self.now, next_check=self.now + self.interval)
            else:
                self.note = "waiting for the candidate to be ready at this step's weight"
            return
        if self.obs.metrics and (s.next_check is None or self.now >= s.next_check):
            self.check()
        if self.status.phase == "AwaitingPromotion":
            self.approval()

    def check(self) -> None:
        s, analysis = self.status, self.spec.analysis
        thresholds_only = s.counters.consecutive_inconclusive >= analysis.inconclusive_limit
        records = [
            judge_metric(m, analysis, self.obs.metrics[m.name], thresholds_only=thresholds_only, now=self.now)
            for m in analysis.metrics
        ]
        verdicts = [self.with_policy(r.verdict) for r in records]
        outcome = worst(verdicts)
        counters = _counted(s.counters, outcome)
        self.update(counters=counters, last_analysis=records, last_check=outcome, next_check=self.now + self.interval)
        self.hold_events(s.last_check, outcome, records)
        if outcome == "Fail" and counters.failed >= analysis.failure_limit:
            failing = next(r for r, v in zip(records, verdicts) if v == "Fail")
            self.roll_back(self.metric_reason(failing))
        elif outcome == "QueryError" and 0 < analysis.consecutive_query_error_limit <= counters.consecutive_query_error:
            failing = next(r for r in records if r.verdict == "QueryError")
            self.roll_back(RollbackReason(
                reason="QueryErrors", step=s.current_step or 0, weight=s.canary_weight or 0, time=self.now,
                message=f"{counters.consecutive_query_error} checks in a row could not query at {self.where()}: {failing.message}",
            ))
        elif outcome == "Pass" and s.phase == "Progressing":
            self.advance()

    def with_policy(self, verdict: CheckVerdict) -> CheckVerdict:
        if verdict != "NoData":
            return verdict
        return {"fail": "Fail", "hold": "NoData", "ignore": "Pass"}[self.spec.analysis.no_data]  # type: ignore[return-value]

    def hold_events(self, before: CheckVerdict | None, after: CheckVerdict, records: list[CanaryAnalysisRecord]) -> None:
        if after in HELD and before not in HELD:
            held = next(r for r in records if self.with_policy(r.verdict) == after)
            self.event("Warning", "AnalysisHeld", f"{held.metric}: {after} at {self.where()}: {held.message}")
        elif before in HELD and after not in HELD:
            self.event("Normal", "AnalysisResumed", f"checks answer again at {self.where()}: {after}")

    def metric_reason(self, record: CanaryAnalysisRecord) -> RollbackReason:
        s = self.status
        return RollbackReason(
            reason="NoData" if record.verdict == "NoData" else "MetricFailed",
            step=s.current_step or 0, weight=s.canary_weight or 0, time=self.now, metric=record.metric,
            value=record.value, baseline=record.baseline, threshold=record.threshold,
            message=f"{record.metric} failed at {self.where()}: {record.message}",
        )

    def advance(self) -> None:
        s = self.status
        if (s.current_step or 0) < (s.steps or 0):
            self.enter_step((s.current_step or 0) + 1)
            return
        self.update(phase="AwaitingPromotion")
        how = "promoting" if self.spec.promotion == "auto" else "waiting for approval"
        self.event("Normal", "AnalysisPassed", f"all {s.steps} steps passed; {how}")
        self.approval()

    def approval(self) -> None:
        if not _approved(self.spec):
            self.waiting = (
                "AwaitingApproval",
                "promotion is manual: set spec.promote, or run `modelpilot canary promote "
                f"{self.ref.name} -n {self.ref.namespace}`",
            )
            return
        if not self.gate("confirm-promotion"):
            return
        self.update(
            phase="Promoting", canary_weight=100,
            promotion=PromotionProgress(stage="ShiftTraffic", started=self.now),
        )
        self.event("Normal", "Promoting", f"moving traffic to the warm candidate pods of version {self.status.candidate_version}")

    def promoting(self) -> None:
        promotion = self.status.promotion
        assert promotion is not None
        if promotion.stage == "ShiftTraffic":
            if not self.in_place():
                self.note = "waiting for the candidate to carry the stable's capacity"
            elif self.spec.mlflow is not None and self.spec.candidate.model_version is not None:
                self.promote_stage("MoveAlias")
            else:
                self.promote_stage("RestartStable")
        elif promotion.stage == "MoveAlias":
            self.move_alias(promotion)
        elif self.stable_restarted(promotion):
            self.promoted()

    def promote_stage(self, stage: Literal["MoveAlias", "RestartStable"], **changes: Any) -> None:
        promotion = self.status.promotion
        assert promotion is not None
        if stage == "RestartStable":
            # The value is fixed here, before the annotation is written: repeating the write
            # after a crash writes the same value, and the stable restarts once.
            changes["restarted_at"] = self.now.isoformat()
        self.update(promotion=promotion.model_copy(update={"stage": stage, **changes}))

    def move_alias(self, promotion: PromotionProgress) -> None:
        if self.obs.registry_error is not None:
            self.note = f"waiting for MLflow: {self.obs.registry_error}"
            return
        holder = self.obs.alias_holder
        if not promotion.alias_recorded:
            # Recorded before the move (the plan moves it once this status is written), so a
            # repeated move never records the candidate as the previous holder.
            self.update(promotion=promotion.model_copy(update={"previous_alias_version": holder, "alias_recorded": True}))
            return
        if holder == self.spec.candidate.model_version:
            was = promotion.previous_alias_version or "none"
            self.event("Normal", "AliasMoved", f"MLflow alias {self.spec.alias!r} -> version {holder} (was {was})")
            self.promote_stage("RestartStable", alias_moved=True)

    def stable_restarted(self, promotion: PromotionProgress) -> bool:
        stable = self.obs.stable
        assert stable is not None
        done = stable.template_annotations.get(RESTART_ANNOTATION) == promotion.restarted_at and stable.rolled_out
        if not done:
            counts = f"{stable.updated}/{stable.replicas} updated, {stable.ready} ready"
            self.note = f"waiting for the stable Deployment to restart ({counts})"
        return done

    def promoted(self) -> None:
        s = self.status
        version = self.spec.candidate.model_version
        message = f"version {s.candidate_version} promoted after {s.steps} steps"
        if self.spec.candidate.image is not None or self.spec.candidate.env or self.spec.candidate.args is not None:
            message += (
                f"; the image, env and args overrides were tried only: make them permanent in Deployment "
                f"{self.spec.target.deployment}'s source"
            )
        self.update(
            phase="Promoted", canary_weight=0, next_check=None, stable_version=version or s.stable_version,
            history=_appended(s, "Promoted", message, self.now, self.spec),
        )
        self.event("Normal", "Promoted", message)

    def roll_back(self, reason: RollbackReason) -> None:
        self.update(
            phase="RolledBack", canary_weight=0, next_check=None, rollback=reason,
            history=_appended(self.status, "RolledBack", reason.message, self.now, self.spec),
        )
        self.event("Warning", "RolledBack", reason.message)

    def finished(self) -> None:
        s = self.status
        if s.next_check is None or self.now >= s.next_check:
            answers = {h: self.obs.hooks[h] for h in NOTIFICATIONS[s.phase or ""] if h in self.obs.hooks}
            done = [h for h, a in answers.items() if a.ok]
            if done:
                self.update(hooks_done=[*s.hooks_done, *done])
            if any(not a.ok for a in answers.values()):
                self.update(next_check=self.now + self.interval)
        promotion = self.status.promotion
        if (
            _restoring_alias(self.status) and promotion is not None and self.obs.registry_error is None
            and self.obs.alias_holder == promotion.previous_alias_version
        ):
            previous = promotion.previous_alias_version or "none"
            self.event("Normal", "AliasRestored", f"MLflow alias {self.spec.alias!r} points at version {previous} again")
            self.update(promotion=promotion.model_copy(update={"alias_recorded": False, "alias_moved": False}))

    # -- the plan ------------------------------------------------------------------------------

    def plan(self) -> CanaryPlan:
        s, stable, spec = self.status, self.obs.stable, self.spec
        assert stable is not None and s.candidate_version is not None
        replicas, weight = self.desired()
        actual = self.obs.actual_weight or 0.0
        if weight > actual and not self.candidate_ready():
            weight = math.floor(actual)  # no more traffic to candidate pods that are not ready
        service_selector = (self.obs.stable_service or {}).get("spec", {}).get("selector")
        deployment = build_candidate_deployment(
            spec, stable.body, self.ref, replicas=replicas, version=s.candidate_version,
            stable_service_selector=service_selector,
        )
        service = None
        if spec.router.type != "replicas" and self.obs.stable_service is not None:
            service = build_candidate_service(spec, self.obs.stable_service, self.ref, version=s.candidate_version)
        return CanaryPlan(
            deployment=deployment, service=service, weight=weight, drain_first=s.phase in TERMINAL,
            restart=self.restart_wanted(), alias=self.alias_wanted(),
        )

    def restart_wanted(self) -> str | None:
        promotion, stable = self.status.promotion, self.obs.stable
        if self.status.phase != "Promoting" or promotion is None or promotion.stage != "RestartStable":
            return None
        assert stable is not None
        return None if stable.template_annotations.get(RESTART_ANNOTATION) == promotion.restarted_at else promotion.restarted_at

    def alias_wanted(self) -> AliasTarget | None:
        s, promotion, spec = self.status, self.status.promotion, self.spec
        if promotion is None or self.obs.registry_error is not None:
            return None
        if s.phase == "Promoting" and promotion.stage == "MoveAlias" and promotion.alias_recorded:
            version = spec.candidate.model_version
            if self.obs.alias_holder == version:
                return None
            tags = {
                "modelpilot.dev/promoted-at": promotion.started.isoformat(),
                "modelpilot.dev/release": f"{self.ref.namespace}/{self.ref.name}",
            }
            return AliasTarget(spec.model, spec.alias, version, tags)
        if _restoring_alias(s) and self.obs.alias_holder != promotion.previous_alias_version:
            return AliasTarget(spec.model, spec.alias, promotion.previous_alias_version)
        return None

    # -- conditions ------------------------------------------------------------------------------

    def conditions(self, generation: int | None) -> list[Condition]:
        s = self.status
        held = s.phase in ("Progressing", "AwaitingPromotion") and s.last_check in HELD
        last = s.last_analysis
        held_message = next((f"{r.metric}: {r.verdict}: {r.message}" for r in last if self.with_policy(r.verdict) in HELD), "")
        progress = self.progress_line()
        if self.blocked is not None:
            reason, message = self.blocked
            status: ConditionStatus = "False" if reason in LASTING else "Unknown"
            ready, progressing = (status, reason, message), ("Unknown", reason, message)
        elif s.phase == "RolledBack":
            assert s.rollback is not None
            ready = progressing = ("False", "RolledBack", s.rollback.message)
        elif s.phase == "Promoted":
            ready = ("True", "Promoted", progress)
            progressing = ("False", "Promoted", progress)
        elif held:
            ready = progressing = ("Unknown", "AnalysisHeld", f"{progress}; held: {held_message}")
        else:
            ready = ("True", s.phase or "Initializing", progress)
            progressing = ("True", s.phase or "Initializing", progress)
        paused = ("True", *self.waiting) if self.waiting else ("False", "NotPaused", "")
        rolled_back = ("False", "NotRolledBack", "")
        if s.phase == "RolledBack" and s.rollback:
            rolled_back = ("True", s.rollback.reason, s.rollback.message)
        promoted = ("True", "Promoted", progress) if s.phase == "Promoted" else ("False", "NotPromoted", "")
        values = {"Ready": ready, "Progressing": progressing, "Promoted": promoted, "RolledBack": rolled_back, "Paused": paused}
        conditions = list(s.conditions)
        for type_ in CONDITION_TYPES:
            status_, reason, message = values[type_]
            conditions = set_condition(
                conditions, type_, status_, reason, message, now=self.now, generation=generation  # type: ignore[arg-type]
            )
        return conditions

    def progress_line(self) -> str:
        s = self.status
        actual = "" if self.obs.actual_weight is None else f", actual {self.obs.actual_weight:.0f}%"
        text = {
            "Initializing": f"preparing version {s.candidate_version} against stable {s.stable_version}",
            "Progressing": f"{self.where()} to version {s.candidate_version}{actual}",
            "AwaitingPromotion": f"all {s.steps} steps passed for version {s.candidate_version}",
            "Promoting": f"promoting version {s.candidate_version}: {s.promotion.stage if s.promotion else ''}",
            "Promoted": f"version {s.candidate_version} promoted; stable serves it",
        }.get(s.phase or "", "")
        return f"{text}; {self.note}" if self.note else text


def _counted(counters: CheckCounters, outcome: CheckVerdict) -> CheckCounters:
    field_name = {
        "Pass": "passed", "Fail": "failed", "NoData": "no_data", "QueryError": "query_error", "Inconclusive": "inconclusive",
    }[outcome]
    return counters.model_copy(update={
        "checks": counters.checks + 1,
        field_name: getattr(counters, field_name) + 1,
        "consecutive_query_error": counters.consecutive_query_error + 1 if outcome == "QueryError" else 0,
        "consecutive_inconclusive": counters.consecutive_inconclusive + 1 if outcome == "Inconclusive" else 0,
    })


def _appended(
    status: CanaryReleaseStatus, outcome: Literal["Promoted", "RolledBack"], message: str, now: datetime, spec: CanaryReleaseSpec
) -> list[ReleaseRecord]:
    record = ReleaseRecord(
        version=spec.candidate.model_version, image=spec.candidate.image, outcome=outcome, started=status.started,
        time=now, message=message,
    )
    return [*status.history, record][-HISTORY_LIMIT:]


def reconcile_canary(
    spec: CanaryReleaseSpec,
    previous: CanaryReleaseStatus,
    obs: CanaryObservations,
    *,
    ref: ReleaseRef,
    generation: int | None,
    now: datetime,
) -> CanaryResult:
    """The new status, the plan and the Events for one tick."""
    tick = _Tick(spec, previous, obs, ref, now)
    if _starts_release(spec, previous):
        tick.start()
    if obs.problem is not None:
        tick.blocked = obs.problem
    elif tick.stable_version():
        if spec.abort and tick.abortable():
            s = tick.status
            tick.roll_back(RollbackReason(
                reason="Aborted", step=s.current_step or 0, weight=s.canary_weight or 0, time=now,
                message=f"aborted at {tick.where()} by spec.abort",
            ))
        elif tick.status.phase == "Initializing":
            tick.initializing()
        elif tick.status.phase in ("Progressing", "AwaitingPromotion"):
            tick.analysing()
        elif tick.status.phase == "Promoting":
            tick.promoting()
        else:
            tick.finished()
    plan = tick.plan() if tick.blocked is None else None
    if tick.blocked is not None:
        ready = find_condition(previous.conditions, "Ready")
        if ready is None or ready.reason != tick.blocked[0]:
            tick.event("Warning", *tick.blocked)
    tick.update(
        observed_generation=generation,
        actual_weight=None if obs.actual_weight is None else round(obs.actual_weight, 1),
    )
    tick.update(conditions=tick.conditions(generation))
    notifications = []
    if any(w.type == "event" for w in spec.webhooks):
        for event in tick.events:
            body = _payload(spec, tick.status, ref, "event")
            text = f"{ref.namespace}/{ref.name}: {event.reason}: {event.message}"
            notifications.append({**body, "reason": event.reason, "text": text})
    return CanaryResult(status=tick.status, plan=plan, events=tick.events, notifications=notifications)
