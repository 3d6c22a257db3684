"""A RetrainPolicy's decision: which trigger fires, when a training Job starts, how the candidate
is judged against the champion, and when it goes to a canary.

Pure and level-triggered: every tick looks at what the sources observed (the monitor's status,
the Job, the MLflow run and versions, the canary) and the policy's status, and returns the new
status plus idempotent actions (create this Job, register this run, create this canary). The
handler writes the status before it applies the actions, so a run is recorded before its Job
exists; a tick that finds the Job, version or canary missing asks for it again. A restarted
operator sees the same status and the same objects, and so takes the same decisions: a running
Job is adopted, never started twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelpilot.api import SpecError, parse_duration
from modelpilot.api.retrain import RetrainPolicySpec, RetrainPolicyStatus, RunStatus, TriggerRecord

from ..conditions import find_condition, set_condition
from ..decision import Decision, EventToPost
from ..owners import PolicyRef
from .builders import build_canary, build_training_job
from .gate import register_and_compare
from .guard import guard_production, production_tags, promoted
from .observations import CreateCanary, CreateJob, RetrainAction, RetrainObservations
from .records import conditions, finish
from .step import PolicyStep
from .triggers import Fired, disarmed, manual_token, monitor_triggers, next_schedule

__all__ = ["RetrainDecision", "decide_retrain"]

RetrainDecision = Decision[RetrainPolicyStatus, RetrainAction]


def decide_retrain(
    spec: RetrainPolicySpec,
    status: RetrainPolicyStatus,
    obs: RetrainObservations,
    *,
    ref: PolicyRef,
    generation: int | None,
    now: datetime,
) -> RetrainDecision:
    """The next status and actions of a policy."""
    refused = obs.pod_policy.violations(spec.training.template.get("spec"), "spec.training.template.spec")
    if refused:
        return _refused(status, refused, generation=generation, now=now)
    step = PolicyStep(spec, obs, ref, now)
    trigger_state, fired = monitor_triggers(spec, status.triggers, obs.monitor)
    update: dict[str, Any] = {"triggers": trigger_state, "observed_generation": generation}

    # The schedule advances whatever the phase: a run that could not start is skipped, not queued.
    next_scheduled = status.next_scheduled or next_schedule(spec, now)
    if next_scheduled is not None and now >= next_scheduled:
        fired.append(Fired("schedule", f"scheduled for {next_scheduled.isoformat()}"))
        next_scheduled = next_schedule(spec, now)
    update["next_scheduled"] = next_scheduled

    token = manual_token(spec, obs)
    if token is not None and token != status.handled_manual_request:
        fired.insert(0, Fired("manual", f"requested ({token.strip('|')})"))
    message = status.last_result or "waiting for a trigger"

    if status.phase == "Idle" and fired:
        cooled = status.last_finished + parse_duration(spec.cooldown) if status.last_finished is not None else None
        manual = fired[0].type == "manual"
        if cooled is not None and now < cooled and not manual:
            message = f"{', '.join(f.type for f in fired)} trigger suppressed: cooldown until {cooled.isoformat()}"
        else:
            number = status.runs + 1
            run = RunStatus(
                number=number,
                job=f"{ref.name}-{number}-1",
                trigger=fired[0].type,
                reason="; ".join(f"{f.type}: {f.reason}" for f in fired),
                started=now,
            )
            update.update(
                triggers=disarmed(trigger_state, fired),
                phase="Training",
                runs=number,
                current_run=run,
                candidate_version=None,
                comparison=[],
                canary=None,
                last_trigger=TriggerRecord(type=run.trigger, reason=run.reason, time=now),
            )
            message = f"training run {number} ({run.trigger}): Job {run.job}"
            step.events.append(EventToPost("Normal", "RetrainTriggered", f"{run.reason}; Job {run.job}"))
    if token is not None and token != status.handled_manual_request:
        update["handled_manual_request"] = token

    status = status.model_copy(update=update)
    production, guarding = guard_production(step, status.production)
    status = status.model_copy(update={"production": production})
    status, message = _progress(step, status, message)
    if guarding is not None:
        message = f"{guarding}; {message}"
    status = status.model_copy(update={"conditions": conditions(status, message, now, generation)})
    return Decision(status=status, actions=step.actions, events=step.events)


def _refused(status: RetrainPolicyStatus, refused: list[str], *, generation: int | None, now: datetime) -> RetrainDecision:
    """A template the operator's pod policy refuses starts nothing until it is fixed (or the
    operator's configuration changes); Ready says which fields, once as an Event."""
    message = "the operator's pod policy refuses the training template: " + "; ".join(refused)
    ready = find_condition(status.conditions, "Ready")
    events = (
        []
        if ready is not None and ready.reason == "PodPolicyViolation"
        else [EventToPost("Warning", "PodPolicyViolation", message)]
    )
    refreshed = set_condition(
        conditions(status, message, now, generation),
        "Ready",
        "False",
        "PodPolicyViolation",
        message,
        now=now,
        generation=generation,
    )
    status = status.model_copy(update={"conditions": refreshed, "observed_generation": generation})
    return Decision(status=status, actions=[], events=events)


def _progress(step: PolicyStep, status: RetrainPolicyStatus, message: str) -> tuple[RetrainPolicyStatus, str]:
    run = status.current_run
    if status.phase == "Training" and run is not None:
        job = step.obs.job
        if job is None or job.state == "Missing":
            step.actions.append(CreateJob(build_training_job(step.spec, step.owner, run, step.now)))
            return status, f"starting Job {run.job}"
        if job.state == "Active":
            return status, f"Job {run.job} is running (attempt {run.attempt})"
        if job.state == "Failed":
            if run.attempt <= step.spec.training.retries:
                retry = run.model_copy(
                    update={
                        "attempt": run.attempt + 1,
                        "job": f"{step.owner.name}-{run.number}-{run.attempt + 1}",
                        "started": step.now,
                    }
                )
                step.events.append(
                    EventToPost("Warning", "TrainingFailed", f"Job {run.job} failed: {job.message}; retrying as {retry.job}")
                )
                step.actions.append(CreateJob(build_training_job(step.spec, step.owner, retry, step.now)))
                return status.model_copy(update={"current_run": retry}), f"retrying: Job {retry.job}"
            text = f"Job {run.job} failed: {job.message}"
            step.events.append(EventToPost("Warning", "TrainingFailed", text))
            return finish(status, step.now, "Failed", text), f"Failed: {text}"
        status = status.model_copy(update={"phase": "Registering"})
    if status.phase == "Registering" and run is not None:
        status, message = register_and_compare(step, status)
    if status.phase == "AwaitingApproval":
        approved = status.candidate_version in {step.spec.deployment.approve_version, step.obs.approve_annotation}
        if not approved:
            return status, f"version {status.candidate_version} passed the gate and awaits approval"
        status = status.model_copy(update={"phase": "Deploying"})
    if status.phase == "Deploying":
        return _deploying(step, status)
    return status, message


def _deploying(step: PolicyStep, status: RetrainPolicyStatus) -> tuple[RetrainPolicyStatus, str]:
    version = status.candidate_version
    assert version is not None
    try:
        manifest = build_canary(step.spec, step.owner, version)
    except SpecError as err:
        text = f"cannot hand version {version} to a canary: {err}"
        step.events.append(EventToPost("Warning", "InvalidCanaryTemplate", text))
        return finish(status, step.now, "Failed", text), text
    name = manifest["metadata"]["name"]
    status = status.model_copy(update={"canary": name})
    phase = step.obs.canary_phase
    if phase in (None, "Missing"):
        step.actions.append(CreateCanary(manifest))
        return status, f"creating CanaryRelease {name}"
    if phase == "Promoted":
        step.events.append(EventToPost("Normal", "Promoted", f"version {version} promoted by CanaryRelease {name}"))
        if status.production is not None:
            step.actions.append(production_tags(status.production, step.now))
        status = status.model_copy(update={"production": promoted(status, version, step.now, step.obs.rollback_annotation)})
        return finish(
            status, step.now, "Promoted", f"version {version} promoted by CanaryRelease {name}"
        ), f"version {version} promoted"
    if phase in ("RolledBack", "Failed"):
        step.events.append(EventToPost("Warning", "CanaryRolledBack", f"CanaryRelease {name} ended {phase}"))
        return finish(
            status, step.now, "RolledBack", f"CanaryRelease {name} ended {phase}"
        ), f"CanaryRelease {name} ended {phase}"
    return status, f"CanaryRelease {name} is {phase}"
