"""The champion/challenger gate of a RetrainPolicy: find the candidate's run, register it, and
compare it with the champion metric by metric."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from modelpilot.api.retrain import MetricComparison, RetrainPolicySpec, RetrainPolicyStatus

from ..decision import EventToPost
from .observations import GATE_DETAIL_TAG, GATE_TAG, RUN_TAG, TRIGGER_TAG, RegisterCandidate, TagVersion
from .records import finish
from .step import PolicyStep

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


def register_and_compare(step: PolicyStep, status: RetrainPolicyStatus) -> tuple[RetrainPolicyStatus, str]:
    run = status.current_run
    assert run is not None
    if step.obs.registry_error is not None:
        return status, f"waiting for MLflow: {step.obs.registry_error}"
    if step.obs.run is None:
        if step.now - run.started > RUN_GRACE and step.obs.job is not None and step.obs.job.state == "Succeeded":
            text = f"Job {run.job} succeeded but no MLflow run is tagged {RUN_TAG}={run.job}"
            step.events.append(EventToPost("Warning", "NoTrainingRun", text))
            return finish(status, step.now, "Failed", text), f"Failed: {text}"
        return status, f"looking for the MLflow run tagged {RUN_TAG}={run.job}"
    status = status.model_copy(update={"current_run": run.model_copy(update={"mlflow_run_id": step.obs.run.run_id})})
    if step.obs.candidate is None:
        tags = {
            TRIGGER_TAG: run.trigger,
            "modelpilot.dev/policy": f"{step.owner.namespace}/{step.owner.name}",
            RUN_TAG: run.job,
        }
        step.actions.append(RegisterCandidate(step.obs.run.run_id, tags))
        return status, f"registering run {step.obs.run.run_id} as a version of {step.spec.model}"
    comparison, failures = compare_with_champion(
        step.spec, step.obs.run.metrics, step.obs.champion.metrics if step.obs.champion else None
    )
    status = status.model_copy(
        update={
            "candidate_version": step.obs.candidate.version,
            "champion_version": step.obs.champion.version if step.obs.champion else None,
            "comparison": comparison,
        }
    )
    summary = ", ".join(
        f"{c.metric} {c.challenger:.4g}" + (f" ({c.change:+.4g})" if c.change is not None else "")
        for c in comparison
        if c.challenger is not None
    )
    step.actions.append(
        TagVersion(
            step.obs.candidate.version,
            {GATE_TAG: "rejected" if failures else "passed", GATE_DETAIL_TAG: "; ".join(failures) or summary},
        )
    )
    if failures:
        text = f"version {step.obs.candidate.version} rejected: {'; '.join(failures)}"
        step.events.append(EventToPost("Warning", "CandidateRejected", text))
        return finish(status, step.now, "Rejected", text), text
    step.events.append(EventToPost("Normal", "CandidateReady", f"version {step.obs.candidate.version} passed the gate"))
    next_phase = "Deploying" if step.spec.deployment.auto else "AwaitingApproval"
    return status.model_copy(update={"phase": next_phase}), f"version {step.obs.candidate.version} passed the gate"
