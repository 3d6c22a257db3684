"""RetrainPolicy decisions: which trigger fires, when a training Job starts, how the candidate is
judged against the champion, and when it goes to a canary.

Pure and level-triggered: every tick looks at what the sources observed (the monitor's status,
the Job, the MLflow run and versions, the canary) and the policy's status, and returns the new
status plus idempotent actions (create this Job, register this run, create this canary). A
restarted operator sees the same status and the same objects, and so takes the same decisions:
a running Job is adopted, never started twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Mapping, Sequence

from modelpilot.api import CANARY_RELEASE, GROUP, VERSION, Condition, SpecError, load_spec, parse_duration
from modelpilot.api.retrain import (
    MetricComparison,
    RetrainPolicySpec,
    RetrainPolicyStatus,
    RetrainRecord,
    RunStatus,
    TriggerRecord,
    TriggerState,
)

from modelpilot.sources.training import (
    RUN_TAG,
    Action,
    CreateCanary,
    CreateJob,
    MonitorView,
    RegisterCandidate,
    RetrainObservations,
)

from .conditions import EventToPost, set_condition
from .owners import PolicyRef
from .schedule import next_cron_time

__all__ = [
    "RetrainDecision",
    "build_canary",
    "build_training_job",
    "compare_with_champion",
    "history_rows",
    "plan_retrain",
]

HISTORY_LIMIT = 20
RUN_GRACE = timedelta(minutes=2)  # a succeeded Job's MLflow run may appear a moment later


@dataclass(frozen=True)
class RetrainDecision:
    status: RetrainPolicyStatus
    actions: list[Action] = field(default_factory=list)
    events: list[EventToPost] = field(default_factory=list)


# --- builders ------------------------------------------------------------------------------


def build_training_job(spec: RetrainPolicySpec, owner: PolicyRef, run: RunStatus, now: datetime) -> dict[str, Any]:
    """The batch/v1 Job of one training attempt: the spec's pod template plus the contract env."""
    window = parse_duration(spec.training.data_window)
    hyper = spec.training.hyperparameters
    environment = {
        "MLFLOW_TRACKING_URI": spec.mlflow.tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": spec.experiment or f"{spec.model}-retraining",
        "MODELPILOT_MODEL_NAME": spec.model,
        "MODELPILOT_RUN_TAG": f"{RUN_TAG}={run.job}",
        "MODELPILOT_POLICY": f"{owner.namespace}/{owner.name}",
        "MODELPILOT_TRIGGER": run.trigger,
        "MODELPILOT_TRIGGER_REASON": run.reason,
        "MODELPILOT_DATA_START": (run.started - window).isoformat(),
        "MODELPILOT_DATA_END": run.started.isoformat(),
        "MODELPILOT_VALIDATION_SPLIT": str(spec.training.validation_split),
        "MODELPILOT_TEST_SPLIT": str(spec.training.test_split),
        "MODELPILOT_HYPERPARAMETERS": json.dumps(
            {"strategy": hyper.strategy, "trials": hyper.trials, "space": hyper.space}, sort_keys=True
        ),
        "MODELPILOT_EARLY_STOPPING": json.dumps(
            {"patience": spec.training.early_stopping.patience, "min_delta": spec.training.early_stopping.min_delta}
        ),
    }
    template = json.loads(json.dumps(spec.training.template))  # a deep copy of plain JSON
    pod = template.setdefault("spec", {})
    pod.setdefault("restartPolicy", "Never")
    for container in pod.get("containers", []):
        given = [e for e in container.get("env", []) if e.get("name") not in environment]
        container["env"] = [*given, *({"name": k, "value": v} for k, v in environment.items())]
    labels = {"app.kubernetes.io/managed-by": "modelpilot", "modelpilot.dev/retrain-policy": owner.name}
    template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run.job,
            "namespace": owner.namespace,
            "labels": {**labels, "modelpilot.dev/trigger": run.trigger},
            "annotations": {"modelpilot.dev/trigger-reason": run.reason[:1000], "modelpilot.dev/attempt": str(run.attempt)},
            "ownerReferences": [owner.owner_reference()],
        },
        "spec": {"backoffLimit": spec.training.backoff_limit, "template": template},
    }
    if spec.training.active_deadline:
        job["spec"]["activeDeadlineSeconds"] = int(parse_duration(spec.training.active_deadline).total_seconds())
    return job


def build_canary(spec: RetrainPolicySpec, owner: PolicyRef, version: str) -> dict[str, Any]:
    """The CanaryRelease for a candidate version, from the policy's template; validated here so
    a template mistake is reported on the policy, naming the field."""
    template = dict(spec.deployment.canary_template)
    body = {
        **template,
        "model": spec.model,
        "candidate": {**dict(template.get("candidate") or {}), "modelVersion": version},
        "mlflow": template.get("mlflow") or {"trackingUri": spec.mlflow.tracking_uri},
    }
    try:
        load_spec(CANARY_RELEASE, body)
    except SpecError as err:
        raise SpecError(err.field.replace("spec", "spec.deployment.canaryTemplate", 1), err.message) from None
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": CANARY_RELEASE.kind,
        "metadata": {
            "name": f"{owner.name}-v{version}",
            "namespace": owner.namespace,
            "labels": {"app.kubernetes.io/managed-by": "modelpilot", "modelpilot.dev/retrain-policy": owner.name},
            "ownerReferences": [owner.owner_reference()],
        },
        "spec": body,
    }


# --- the gate ------------------------------------------------------------------------------


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


# --- triggers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fired:
    type: Literal["performance", "drift", "schedule", "manual"]
    reason: str


def _manual_token(spec: RetrainPolicySpec, obs: RetrainObservations) -> str | None:
    parts = [spec.triggers.manual.request, obs.manual_annotation]
    return "|".join(p or "" for p in parts) if any(parts) else None


def _monitor_triggers(
    spec: RetrainPolicySpec, state: TriggerState, monitor: MonitorView | None
) -> tuple[TriggerState, list[_Fired]]:
    """Advance the edge detectors on a new monitor evaluation; an armed detector whose condition
    holds fires. It is disarmed only when its firing starts a run (see ``_disarmed``), so a
    trigger held back by the cooldown or a busy policy fires once that is over."""
    if monitor is None or monitor.last_evaluation is None or monitor.last_evaluation == state.last_monitor_evaluation:
        return state, []
    fired: list[_Fired] = []
    streak, armed_perf, armed_drift = state.performance_streak, state.performance_armed, state.drift_armed
    performance = spec.triggers.performance
    if performance is not None:
        value = monitor.quality.get(performance.metric)
        if value is not None and value < performance.threshold:
            streak += 1
            if armed_perf and streak >= performance.sustained_evaluations:
                fired.append(_Fired(
                    "performance",
                    f"{performance.metric} {value:.4g} < {performance.threshold:g} for {streak} evaluations",
                ))
        elif value is not None:
            streak, armed_perf = 0, True
    drift = spec.triggers.drift
    if drift is not None:
        drifted = sorted(n for n, psi in monitor.feature_psi.items() if psi >= drift.psi_threshold)
        label = bool(drift.label_drift and monitor.label_drift)
        if len(drifted) >= drift.min_features or label:
            if armed_drift:
                what = f"PSI >= {drift.psi_threshold:g} on {', '.join(drifted) or 'no feature'}"
                fired.append(_Fired("drift", what + ("; label drift" if label else "")))
        else:
            armed_drift = True
    return (
        TriggerState(
            last_monitor_evaluation=monitor.last_evaluation,
            performance_streak=streak,
            performance_armed=armed_perf,
            drift_armed=armed_drift,
        ),
        fired,
    )


def _disarmed(state: TriggerState, fired: Sequence[_Fired]) -> TriggerState:
    types = {f.type for f in fired}
    return state.model_copy(update={
        "performance_armed": state.performance_armed and "performance" not in types,
        "drift_armed": state.drift_armed and "drift" not in types,
    })


def _next_schedule(spec: RetrainPolicySpec, after: datetime) -> datetime | None:
    schedule = spec.triggers.schedule
    if schedule is None:
        return None
    if schedule.cron is not None:
        return next_cron_time(schedule.cron, max(after, schedule.start_time or after))
    assert schedule.interval is not None
    interval = parse_duration(schedule.interval)
    if schedule.start_time is None:
        return after + interval
    if after < schedule.start_time:
        return schedule.start_time
    periods = (after - schedule.start_time) // interval + 1
    return schedule.start_time + periods * interval


# --- the plan ------------------------------------------------------------------------------


def _record(status: RetrainPolicyStatus, now: datetime, result: str, message: str, version: str | None, metric: float | None) -> list[RetrainRecord]:
    trigger = status.current_run.trigger if status.current_run else (status.last_trigger.type if status.last_trigger else "manual")
    row = RetrainRecord(time=now, trigger=trigger, version=version, primary_metric=metric, outcome=result, message=message)
    return [*status.history, row][-HISTORY_LIMIT:]


def _conditions(status: RetrainPolicyStatus, message: str, now: datetime, generation: int | None) -> list[Condition]:
    phase = status.phase
    values = {
        "Ready": ("True", "Watching" if phase == "Idle" else phase, message),
        "Training": ("True", "JobRunning", message) if phase in ("Training", "Registering") else ("False", "NoRun", "no training run in progress"),
        "CandidateReady": (
            ("True", "GatePassed", f"version {status.candidate_version} passed the gate")
            if phase in ("AwaitingApproval", "Deploying")
            else ("False", "NoCandidate", status.last_result or "no candidate")
        ),
        "AwaitingApproval": (
            ("True", "WaitingForApproval", f"set spec.deployment.approveVersion: \"{status.candidate_version}\" to deploy")
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
        conditions = set_condition(conditions, type_, value, reason, text, now=now, generation=generation)  # type: ignore[arg-type]
    return conditions


def plan_retrain(
    spec: RetrainPolicySpec,
    status: RetrainPolicyStatus,
    obs: RetrainObservations,
    *,
    owner: PolicyRef,
    generation: int | None,
    now: datetime,
) -> RetrainDecision:
    """The next status and actions of a policy."""
    actions: list[Action] = []
    events: list[EventToPost] = []
    trigger_state, fired = _monitor_triggers(spec, status.triggers, obs.monitor)
    update: dict[str, Any] = {"triggers": trigger_state, "observed_generation": generation}

    # The schedule advances whatever the phase: a run that could not start is skipped, not queued.
    next_scheduled = status.next_scheduled or _next_schedule(spec, now)
    if next_scheduled is not None and now >= next_scheduled:
        fired.append(_Fired("schedule", f"scheduled for {next_scheduled.isoformat()}"))
        next_scheduled = _next_schedule(spec, now)
    update["next_scheduled"] = next_scheduled

    token = _manual_token(spec, obs)
    if token is not None and token != status.handled_manual_request:
        fired.insert(0, _Fired("manual", f"requested ({token.strip('|')})"))
    message = status.last_result or "waiting for a trigger"

    if status.phase == "Idle" and fired:
        cooling = status.last_finished is not None and now < status.last_finished + parse_duration(spec.cooldown)
        manual = fired[0].type == "manual"
        if cooling and not manual:
            message = f"{', '.join(f.type for f in fired)} trigger suppressed: cooldown until {(status.last_finished + parse_duration(spec.cooldown)).isoformat()}"  # type: ignore[operator]
        else:
            number = status.runs + 1
            run = RunStatus(
                number=number, job=f"{owner.name}-{number}-1", trigger=fired[0].type,
                reason="; ".join(f"{f.type}: {f.reason}" for f in fired), started=now,
            )
            update.update(
                triggers=_disarmed(trigger_state, fired), phase="Training", runs=number, current_run=run, candidate_version=None, comparison=[], canary=None,
                last_trigger=TriggerRecord(type=run.trigger, reason=run.reason, time=now),
            )
            message = f"training run {number} ({run.trigger}): Job {run.job}"
            events.append(EventToPost("Normal", "RetrainTriggered", f"{run.reason}; Job {run.job}"))
    if token is not None and token != status.handled_manual_request:
        update["handled_manual_request"] = token

    status = status.model_copy(update=update)
    status, message = _progress(spec, status, obs, owner, now, actions, events, message)
    status = status.model_copy(update={"conditions": _conditions(status, message, now, generation)})
    return RetrainDecision(status=status, actions=actions, events=events)


def _finish(status: RetrainPolicyStatus, now: datetime, result: str, message: str) -> RetrainPolicyStatus:
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


def _progress(
    spec: RetrainPolicySpec,
    status: RetrainPolicyStatus,
    obs: RetrainObservations,
    owner: PolicyRef,
    now: datetime,
    actions: list[Action],
    events: list[EventToPost],
    message: str,
) -> tuple[RetrainPolicyStatus, str]:
    run = status.current_run
    if status.phase == "Training" and run is not None:
        job = obs.job
        if job is None or job.state == "Missing":
            actions.append(CreateJob(build_training_job(spec, owner, run, now)))
            return status, f"starting Job {run.job}"
        if job.state == "Active":
            return status, f"Job {run.job} is running (attempt {run.attempt})"
        if job.state == "Failed":
            if run.attempt <= spec.training.retries:
                retry = run.model_copy(update={"attempt": run.attempt + 1, "job": f"{owner.name}-{run.number}-{run.attempt + 1}", "started": now})
                events.append(EventToPost("Warning", "TrainingFailed", f"Job {run.job} failed: {job.message}; retrying as {retry.job}"))
                actions.append(CreateJob(build_training_job(spec, owner, retry, now)))
                return status.model_copy(update={"current_run": retry}), f"retrying: Job {retry.job}"
            text = f"Job {run.job} failed: {job.message}"
            events.append(EventToPost("Warning", "TrainingFailed", text))
            return _finish(status, now, "Failed", text), f"Failed: {text}"
        status = status.model_copy(update={"phase": "Registering"})
    if status.phase == "Registering" and run is not None:
        status, message = _register(spec, status, obs, owner, now, actions, events)
    if status.phase == "AwaitingApproval":
        approved = status.candidate_version in {spec.deployment.approve_version, obs.approve_annotation}
        if not approved:
            return status, f"version {status.candidate_version} passed the gate and awaits approval"
        status = status.model_copy(update={"phase": "Deploying"})
    if status.phase == "Deploying":
        return _deploying(spec, status, obs, owner, now, actions, events)
    return status, message


def _register(
    spec: RetrainPolicySpec, status: RetrainPolicyStatus, obs: RetrainObservations, owner: PolicyRef, now: datetime,
    actions: list[Action], events: list[EventToPost],
) -> tuple[RetrainPolicyStatus, str]:
    run = status.current_run
    assert run is not None
    if obs.registry_error is not None:
        return status, f"waiting for MLflow: {obs.registry_error}"
    if obs.run is None:
        if now - run.started > RUN_GRACE and obs.job is not None and obs.job.state == "Succeeded":
            text = f"Job {run.job} succeeded but no MLflow run is tagged {RUN_TAG}={run.job}"
            events.append(EventToPost("Warning", "NoTrainingRun", text))
            return _finish(status, now, "Failed", text), f"Failed: {text}"
        return status, f"looking for the MLflow run tagged {RUN_TAG}={run.job}"
    status = status.model_copy(update={"current_run": run.model_copy(update={"mlflow_run_id": obs.run.run_id})})
    if obs.candidate is None:
        tags = {"modelpilot.dev/trigger": run.trigger, "modelpilot.dev/policy": f"{owner.namespace}/{owner.name}", RUN_TAG: run.job}
        actions.append(RegisterCandidate(obs.run.run_id, tags))
        return status, f"registering run {obs.run.run_id} as a version of {spec.model}"
    comparison, failures = compare_with_champion(spec, obs.run.metrics, obs.champion.metrics if obs.champion else None)
    status = status.model_copy(update={
        "candidate_version": obs.candidate.version,
        "champion_version": obs.champion.version if obs.champion else None,
        "comparison": comparison,
    })
    if failures:
        text = f"version {obs.candidate.version} rejected: {'; '.join(failures)}"
        events.append(EventToPost("Warning", "CandidateRejected", text))
        return _finish(status, now, "Rejected", text), text
    events.append(EventToPost("Normal", "CandidateReady", f"version {obs.candidate.version} passed the gate"))
    next_phase = "Deploying" if spec.deployment.auto else "AwaitingApproval"
    return status.model_copy(update={"phase": next_phase}), f"version {obs.candidate.version} passed the gate"


def _deploying(
    spec: RetrainPolicySpec, status: RetrainPolicyStatus, obs: RetrainObservations, owner: PolicyRef, now: datetime,
    actions: list[Action], events: list[EventToPost],
) -> tuple[RetrainPolicyStatus, str]:
    version = status.candidate_version
    assert version is not None
    try:
        manifest = build_canary(spec, owner, version)
    except SpecError as err:
        text = f"cannot hand version {version} to a canary: {err}"
        events.append(EventToPost("Warning", "InvalidCanaryTemplate", text))
        return _finish(status, now, "Failed", text), text
    name = manifest["metadata"]["name"]
    status = status.model_copy(update={"canary": name})
    phase = obs.canary_phase
    if phase in (None, "Missing"):
        actions.append(CreateCanary(manifest))
        return status, f"creating CanaryRelease {name}"
    if phase == "Promoted":
        events.append(EventToPost("Normal", "Promoted", f"version {version} promoted by CanaryRelease {name}"))
        return _finish(status, now, "Promoted", f"version {version} promoted by CanaryRelease {name}"), f"version {version} promoted"
    if phase in ("RolledBack", "Failed"):
        events.append(EventToPost("Warning", "CanaryRolledBack", f"CanaryRelease {name} ended {phase}"))
        return _finish(status, now, "RolledBack", f"CanaryRelease {name} ended {phase}"), f"CanaryRelease {name} ended {phase}"
    return status, f"CanaryRelease {name} is {phase}"


def history_rows(history: Sequence[RetrainRecord]) -> list[tuple[str, ...]]:
    """The retraining history as table rows (newest last), as `modelpilot retrain history` prints."""
    return [
        (r.time.isoformat(), r.trigger, r.version or "-", "-" if r.primary_metric is None else f"{r.primary_metric:.4g}", r.outcome, r.message)
        for r in history
    ]
