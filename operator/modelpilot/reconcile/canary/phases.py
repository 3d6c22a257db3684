"""The phases of a CanaryRelease as one tick sees them: Initializing, Progressing with its checks,
AwaitingPromotion, Promoting (ShiftTraffic, MoveAlias, RestartStable), Promoted, RolledBack.

``ReleaseTick`` holds one tick's decision in the making; ``decide`` runs it and ``plan`` turns
its status into what must be true in the cluster.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from modelpilot.analysis.sequential import always_valid_p
from modelpilot.api import parse_duration
from modelpilot.api.canary import (
    ABArm,
    ABTestStatus,
    CanaryAnalysisRecord,
    CanaryReleaseSpec,
    CanaryReleaseStatus,
    CheckCounters,
    CheckVerdict,
    HookType,
    PromotionProgress,
    ReleaseRecord,
    RollbackReason,
    ShadowStatus,
)

from ..conditions import find_condition
from ..decision import EventToPost, newest
from ..owners import ReleaseRef
from .analysis import AGREEMENT, class_shares, judge_metric, proportion_counts, worst
from .needs import (
    GATES,
    NOTIFICATIONS,
    TERMINAL,
    approved,
    configured,
    fresh,
    judged_metrics,
    restoring_alias,
    shadowing,
)
from .objects import VERSION_LABEL
from .observations import RESTART_ANNOTATION, CanaryObservations
from .routes import candidate_replicas

__all__ = ["HELD", "ReleaseTick"]

HELD: tuple[CheckVerdict, ...] = ("QueryError", "NoData")
#: What a NoData verdict counts as, by spec.analysis.noData.
NO_DATA_POLICY: dict[str, CheckVerdict] = {"fail": "Fail", "hold": "NoData", "ignore": "Pass"}


class ReleaseTick:
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
        self.events.append(EventToPost(type_, reason, message))

    @property
    def interval(self) -> timedelta:
        return parse_duration(self.spec.interval)

    @property
    def weights(self) -> list[int]:
        return self.spec.weights()

    def where(self) -> str:
        s = self.status
        if self.shadowing():
            assert self.spec.shadow is not None
            return f"the shadow ({self.spec.shadow.percent}% of requests mirrored)"
        return f"step {s.current_step}/{s.steps} ({s.canary_weight}% traffic)"

    def shadowing(self) -> bool:
        return shadowing(self.status)

    def desired(self) -> tuple[int, int]:
        """(candidate replicas, candidate weight) the status asks for."""
        s, stable = self.status, self.obs.stable
        assert stable is not None
        capacity = max(stable.replicas, 1)
        if s.phase == "Initializing":
            warm = self.spec.router.type != "replicas" and all(g in s.hooks_done for g in GATES if configured(self.spec, g))
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
        if not configured(self.spec, hook) or hook in self.status.hooks_done:
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
        self.status = fresh(self.spec, previous, self.ref, self.now)
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
        if self.spec.shadow is not None:
            self.enter_shadow()
        else:
            self.enter_step(1)

    def enter_shadow(self) -> None:
        assert self.spec.shadow is not None
        self.update(
            phase="Progressing", current_step=0, canary_weight=0, step_started=None, shadow=ShadowStatus(started=self.now)
        )
        self.event(
            "Normal", "ShadowStarted", f"version {self.status.candidate_version} gets {self.where()}; its answers go nowhere"
        )

    def enter_step(self, step: int) -> None:
        weight = self.weights[step - 1]
        self.update(
            phase="Progressing",
            current_step=step,
            canary_weight=weight,
            step_started=None,
            next_check=None,
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
            for m in judged_metrics(self.spec, s)
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
            self.roll_back(
                RollbackReason(
                    reason="QueryErrors",
                    step=s.current_step or 0,
                    weight=s.canary_weight or 0,
                    time=self.now,
                    message=(
                        f"{counters.consecutive_query_error} checks in a row could not query at {self.where()}: {failing.message}"
                    ),
                )
            )
        elif self.shadowing():
            self.shadow_look()
        elif self.spec.ab_test is not None:
            if s.phase == "Progressing":
                self.ab_look()
        elif outcome == "Pass" and s.phase == "Progressing":
            self.advance()

    def shadow_look(self) -> None:
        """Judge the candidate's agreement with the stable on the mirrored requests so far; after
        spec.shadow.duration of passing checks, go on to the canary steps or stop."""
        shadow, s = self.spec.shadow, self.status
        assert shadow is not None and s.shadow is not None and s.step_started is not None
        answer = self.obs.metrics.get(AGREEMENT)
        shares = class_shares(answer) if answer is not None else None
        current = s.shadow
        if shares is not None:
            (candidate, c_total), (stable, s_total) = shares
            agreement = 1 - 0.5 * sum(abs(candidate.get(k, 0.0) - stable.get(k, 0.0)) for k in candidate.keys() | stable.keys())
            current = current.model_copy(
                update={"candidate_predictions": c_total, "stable_predictions": s_total, "agreement": agreement}
            )
        self.update(shadow=current)
        judged = (
            current.agreement is not None and min(current.candidate_predictions, current.stable_predictions) >= shadow.min_samples
        )
        if judged and current.agreement is not None and current.agreement < shadow.min_agreement:
            self.update(shadow=current.model_copy(update={"decision": "Failed"}))
            counts = f"{current.candidate_predictions:.0f} and {current.stable_predictions:.0f} predictions"
            message = (
                f"the candidate agrees with the stable on {current.agreement:.1%} of its predicted classes in the shadow, "
                f"below {shadow.min_agreement:.0%} ({counts})"
            )
            self.roll_back(
                RollbackReason(
                    reason="ShadowDisagreed",
                    step=0,
                    weight=0,
                    time=self.now,
                    metric="agreement",
                    value=current.agreement,
                    threshold=shadow.min_agreement,
                    message=message,
                )
            )
            return
        if not judged or self.now - s.step_started < parse_duration(shadow.duration):
            return
        passed = f"the shadow passed: agreement {current.agreement:.1%} over {shadow.duration}"
        self.update(shadow=current.model_copy(update={"decision": "Passed"}))
        if shadow.then == "canary":
            self.event("Normal", "ShadowPassed", f"{passed}; the canary steps follow")
            self.enter_step(1)
            return
        message = f"{passed}; the release stops here (spec.shadow.then: stop), nothing promoted"
        self.update(phase="Completed", next_check=None, history=_appended(self.status, "Completed", message, self.now, self.spec))
        self.event("Normal", "ShadowPassed", message)

    def ab_look(self) -> None:
        """Read the A/B test on all its data so far: a winner, the stable kept, or more data."""
        ab, s = self.spec.ab_test, self.status
        assert ab is not None and s.step_started is not None
        metric = next(m for m in self.spec.analysis.metrics if m.name == ab.metric)
        answer = self.obs.metrics.get(ab.metric)
        counts = proportion_counts(metric, answer) if answer is not None else None
        previous = s.ab_test
        looked = previous.model_copy(update={"looks": previous.looks + 1}) if previous else None
        if counts is not None:
            (c_events, c_samples), (s_events, s_samples) = counts
            enough = min(c_samples, s_samples) >= ab.min_samples
            # Only looks with enough samples on both sides move the p-value, so early noise cannot.
            result = always_valid_p(
                s_events, s_samples, c_events, c_samples, tau=ab.mixing_sd, previous_p=previous.p_value if previous else 1.0
            )
            looked = ABTestStatus(
                metric=ab.metric,
                stable=ABArm(events=s_events, samples=s_samples, rate=result.rate_a if result else None),
                candidate=ABArm(events=c_events, samples=c_samples, rate=result.rate_b if result else None),
                difference=result.difference if result else None,
                p_value=result.p_value if result and enough else (previous.p_value if previous else 1.0),
                looks=(previous.looks if previous else 0) + 1,
            )
        self.update(ab_test=looked)
        if looked is not None and looked.difference is not None and looked.p_value <= ab.alpha:
            candidate_better = (looked.difference < 0) == (metric.builtin == "error-rate")
            what = (
                f"{ab.metric}: candidate {looked.candidate.rate:.4g} against stable {looked.stable.rate:.4g} "
                f"on {looked.candidate.samples:.0f} and {looked.stable.samples:.0f} samples, always-valid p {looked.p_value:.3g}"
            )
            if candidate_better:
                self.update(ab_test=looked.model_copy(update={"decision": "CandidateWins", "decided": self.now}))
                self.event("Normal", "ABTestDecided", f"the candidate wins the A/B test: {what}")
                self.advance()
            else:
                self.update(ab_test=looked.model_copy(update={"decision": "StableWins", "decided": self.now}))
                self.roll_back(self.ab_reason("ABTestLost", f"the stable wins the A/B test: {what}", looked))
        elif self.now - s.step_started >= parse_duration(ab.duration):
            decided = looked.model_copy(update={"decision": "Inconclusive", "decided": self.now}) if looked else None
            self.update(ab_test=decided)
            message = (
                f"no winner after {ab.duration}; the stable stays (always-valid p {looked.p_value:.3g})"
                if looked
                else (f"no winner after {ab.duration}: no data; the stable stays")
            )
            self.roll_back(self.ab_reason("ABTestInconclusive", message, looked))

    def ab_reason(
        self, reason: Literal["ABTestLost", "ABTestInconclusive"], message: str, ab: ABTestStatus | None
    ) -> RollbackReason:
        s = self.status
        return RollbackReason(
            reason=reason,
            step=s.current_step or 0,
            weight=s.canary_weight or 0,
            time=self.now,
            metric=ab.metric if ab else None,
            value=ab.candidate.rate if ab else None,
            baseline=ab.stable.rate if ab else None,
            message=message,
        )

    def with_policy(self, verdict: CheckVerdict) -> CheckVerdict:
        if verdict != "NoData":
            return verdict
        return NO_DATA_POLICY[self.spec.analysis.no_data]

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
            step=s.current_step or 0,
            weight=s.canary_weight or 0,
            time=self.now,
            metric=record.metric,
            value=record.value,
            baseline=record.baseline,
            threshold=record.threshold,
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
        if not approved(self.spec):
            self.waiting = (
                "AwaitingApproval",
                "promotion is manual: set spec.promote, or run `modelpilot canary promote "
                f"{self.ref.name} -n {self.ref.namespace}`",
            )
            return
        if not self.gate("confirm-promotion"):
            return
        self.update(
            phase="Promoting",
            canary_weight=100,
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
            phase="Promoted",
            canary_weight=0,
            next_check=None,
            stable_version=version or s.stable_version,
            history=_appended(s, "Promoted", message, self.now, self.spec),
        )
        self.event("Normal", "Promoted", message)

    def roll_back(self, reason: RollbackReason) -> None:
        self.update(
            phase="RolledBack",
            canary_weight=0,
            next_check=None,
            rollback=reason,
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
            restoring_alias(self.status)
            and promotion is not None
            and self.obs.registry_error is None
            and self.obs.alias_holder == promotion.previous_alias_version
        ):
            previous = promotion.previous_alias_version or "none"
            self.event("Normal", "AliasRestored", f"MLflow alias {self.spec.alias!r} points at version {previous} again")
            self.update(promotion=promotion.model_copy(update={"alias_recorded": False, "alias_moved": False}))
        s, candidate = self.status, self.obs.candidate
        hooks = [h for h in NOTIFICATIONS[s.phase or ""] if configured(self.spec, h)]
        self.update(
            settled=not restoring_alias(s)
            and all(h in s.hooks_done for h in hooks)
            and (candidate is None or (candidate.replicas == 0 and candidate.ready == 0))
            and (self.obs.actual_weight or 0.0) < 0.5
        )


def _counted(counters: CheckCounters, outcome: CheckVerdict) -> CheckCounters:
    field_name = {
        "Pass": "passed",
        "Fail": "failed",
        "NoData": "no_data",
        "QueryError": "query_error",
        "Inconclusive": "inconclusive",
    }[outcome]
    return counters.model_copy(
        update={
            "checks": counters.checks + 1,
            field_name: getattr(counters, field_name) + 1,
            "consecutive_query_error": counters.consecutive_query_error + 1 if outcome == "QueryError" else 0,
            "consecutive_inconclusive": counters.consecutive_inconclusive + 1 if outcome == "Inconclusive" else 0,
        }
    )


def _appended(
    status: CanaryReleaseStatus,
    outcome: Literal["Promoted", "RolledBack", "Completed"],
    message: str,
    now: datetime,
    spec: CanaryReleaseSpec,
) -> list[ReleaseRecord]:
    record = ReleaseRecord(
        version=spec.candidate.model_version,
        image=spec.candidate.image,
        outcome=outcome,
        started=status.started,
        time=now,
        message=message,
    )
    return newest(status.history, record)
