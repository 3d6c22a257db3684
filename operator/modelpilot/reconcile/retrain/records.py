"""What a RetrainPolicy's status says when a run ends, and the conditions it shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelpilot.api import Condition
from modelpilot.api.retrain import RetrainPolicyStatus, RetrainRecord

from ..conditions import ConditionValue, set_condition
from ..decision import newest

__all__ = ["conditions", "finish", "history_rows"]


def _record(
    status: RetrainPolicyStatus, now: datetime, result: str, message: str, version: str | None, metric: float | None
) -> list[RetrainRecord]:
    trigger = (
        status.current_run.trigger if status.current_run else (status.last_trigger.type if status.last_trigger else "manual")
    )
    row = RetrainRecord(time=now, trigger=trigger, version=version, primary_metric=metric, outcome=result, message=message)
    return newest(status.history, row)


def conditions(status: RetrainPolicyStatus, message: str, now: datetime, generation: int | None) -> list[Condition]:
    phase = status.phase
    values: dict[str, ConditionValue] = {
        "Ready": ("True", "Watching" if phase == "Idle" else phase, message),
        "Training": ("True", "JobRunning", message)
        if phase in ("Training", "Registering")
        else ("False", "NoRun", "no training run in progress"),
        "CandidateReady": (
            ("True", "GatePassed", f"version {status.candidate_version} passed the gate")
            if phase in ("AwaitingApproval", "Deploying")
            else ("False", "NoCandidate", status.last_result or "no candidate")
        ),
        "AwaitingApproval": (
            ("True", "WaitingForApproval", f'set spec.deployment.approveVersion: "{status.candidate_version}" to deploy')
            if phase == "AwaitingApproval"
            else ("False", "NotWaiting", "nothing awaits approval")
        ),
        "Deploying": (
            ("True", "CanaryRunning", f"CanaryRelease {status.canary} rolls out version {status.candidate_version}")
            if phase == "Deploying"
            else ("False", "NotDeploying", "no canary in progress")
        ),
    }
    conditions = list(status.conditions)
    for type_, (value, reason, text) in values.items():
        conditions = set_condition(conditions, type_, value, reason, text, now=now, generation=generation)
    return conditions


def finish(status: RetrainPolicyStatus, now: datetime, result: str, message: str) -> RetrainPolicyStatus:
    metric = status.comparison[0].challenger if status.comparison else None  # the primary metric comes first
    return status.model_copy(
        update={
            "phase": "Idle",
            "last_result": result,
            "last_finished": now,
            "history": _record(status, now, result, message, status.candidate_version, metric),
            "current_run": None,
        }
    )


def history_rows(history: Sequence[RetrainRecord]) -> list[tuple[str, ...]]:
    """The retraining history as table rows (newest last), as `modelpilot retrain history` prints."""
    return [
        (
            r.time.isoformat(),
            r.trigger,
            r.version or "-",
            "-" if r.primary_metric is None else f"{r.primary_metric:.4g}",
            r.outcome,
            r.message,
        )
        for r in history
    ]
