"""The champion/challenger gate of a RetrainPolicy: find the candidate's run, register it, and
compare it with the champion metric by metric."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from modelpilot.api.retrain import MetricComparison, RetrainPolicySpec, RetrainPolicyStatus

from ..decision import EventToPost
from ..owners import PolicyRef
from .observations import RUN_TAG, RegisterCandidate, RetrainAction, RetrainObservations
from .records import finish

__all__ = ["compare_with_champion", "register_and_compare"]

RUN_GRACE = timedelta(minutes=2)  # a succeeded Job's MLflow run may appear a moment later


def compare_with_champion(
    spec: RetrainPolicySpec, challenger: Mapping[str, float], champion: Mapping[str, float] | None
) -> tuple[list[MetricComparison], list[str]]:
    """Each gated metric side by side; the list of reasons it fails (empty: it passes).

    The primary metric must beat the champion by minImprovement; the others may not regress by
    more than the tolerance; every metric with a threshold must reach it. Without a champion
    only the thresholds apply.
    """
    gate = spec.gate
    names = list(dict.fromkeys([gate.primary_metric, *gate.metrics, *gate.thresholds]))
    rows, failures = [], []
    for name in names:
        new = challenger.get(name)
        old = champion.get(name) if champion else None
        problems = []
        if new is None:
            problems.append(f"{name}: the candidate's run logged no such metric")
        else:
            floor = gate.thresholds.get(name)
            if floor is not None and new < floor:
                problems.append(f"{name} {new:.4g} < threshold {floor:.4g}")
            if old is not None:
                if name == gate.primary_metric and new < old + gate.min_improvement:
                    problems.append(f"{name} {new:.4g} does not beat the champion's {old:.4g} by {gate.min_improvement:g}")
                elif name != gate.primary_metric and new < old - gate.tolerance:
                    problems.append(f"{name} {new:.4g} regresses from the champion's {old:.4g} by more than {gate.tolerance:g}")
        rows.append(
            MetricComparison(
                metric=name,
                champion=old,
                challenger=new,
                change=None if new is None or old is None else round(new - old, 6),
                passed=not problems,
            )
        )
        failures.extend(problems)
    return rows, failures


def register_and_compare(
    spec: RetrainPolicySpec,
    status: RetrainPolicyStatus,
    obs: RetrainObservations,
    owner: PolicyRef,
    now: datetime,
    actions: list[RetrainAction],
    events: list[EventToPost],
) -> tuple[RetrainPolicyStatus, str]:
    run = status.current_run
    assert run is not None
    if obs.registry_error is not None:
        return status, f"waiting for MLflow: {obs.registry_error}"
    if obs.run is None:
        if now - run.started > RUN_GRACE and obs.job is not None and obs.job.state == "Succeeded":
            text = f"Job {run.job} succeeded but no MLflow run is tagged {RUN_TAG}={run.job}"
            events.append(EventToPost("Warning", "NoTrainingRun", text))
            return finish(status, now, "Failed", text), f"Failed: {text}"
        return status, f"looking for the MLflow run tagged {RUN_TAG}={run.job}"
    status = status.model_copy(update={"current_run": run.model_copy(update={"mlflow_run_id": obs.run.run_id})})
    if obs.candidate is None:
        tags = {
            "modelpilot.dev/trigger": run.trigger,
            "modelpilot.dev/policy": f"{owner.namespace}/{owner.name}",
            RUN_TAG: run.job,
        }
        actions.append(RegisterCandidate(obs.run.run_id, tags))
        return status, f"registering run {obs.run.run_id} as a version of {spec.model}"
    comparison, failures = compare_with_champion(spec, obs.run.metrics, obs.champion.metrics if obs.champion else None)
    status = status.model_copy(
        update={
            "candidate_version": obs.candidate.version,
            "champion_version": obs.champion.version if obs.champion else None,
            "comparison": comparison,
        }
    )
    if failures:
        text = f"version {obs.candidate.version} rejected: {'; '.join(failures)}"
        events.append(EventToPost("Warning", "CandidateRejected", text))
        return finish(status, now, "Rejected", text), text
    events.append(EventToPost("Normal", "CandidateReady", f"version {obs.candidate.version} passed the gate"))
    next_phase = "Deploying" if spec.deployment.auto else "AwaitingApproval"
    return status.model_copy(update={"phase": next_phase}), f"version {obs.candidate.version} passed the gate"
