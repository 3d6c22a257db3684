"""What a RetrainPolicy reads and writes: its monitor's status, training Jobs, MLflow runs and
versions, CanaryReleases. Reads never raise for a passing failure; writes tolerate "already
exists", so repeating one after a restart is harmless."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Mapping

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelpilot.api import CANARY_RELEASE, GROUP, MODEL_MONITOR, VERSION
from modelpilot.api.retrain import RetrainPolicySpec, RetrainPolicyStatus
from .kubernetes import api_client
from .mlflow import MlflowRegistry, RegistryError

__all__ = [
    "APPROVE_ANNOTATION",
    "MANUAL_ANNOTATION",
    "MODEL_ARTIFACT",
    "RUN_TAG",
    "Action",
    "CreateCanary",
    "CreateJob",
    "JobView",
    "MonitorView",
    "RegisterCandidate",
    "RetrainObservations",
    "RunView",
    "VersionView",
    "apply_retrain_actions",
    "gather_retrain_observations",
]

MODEL_ARTIFACT = "model"
"""Where the training contract puts the model in its MLflow run."""
RUN_TAG = "modelpilot.dev/retrain-run"
"""The MLflow run tag the training Job sets (value: the Job's name): how its run is found."""
MANUAL_ANNOTATION = "modelpilot.dev/retrain-request"
APPROVE_ANNOTATION = "modelpilot.dev/approve-version"


@dataclass(frozen=True)
class MonitorView:
    """What a policy reads of its ModelMonitor's status."""

    last_evaluation: datetime | None
    quality: Mapping[str, float | None] = field(default_factory=dict)
    feature_psi: Mapping[str, float] = field(default_factory=dict)
    label_drift: bool | None = None


@dataclass(frozen=True)
class JobView:
    name: str
    state: Literal["Missing", "Active", "Succeeded", "Failed"]
    message: str = ""


@dataclass(frozen=True)
class RunView:
    run_id: str
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class VersionView:
    version: str
    run_id: str | None
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class RetrainObservations:
    monitor: MonitorView | None = None
    monitor_error: str | None = None
    manual_annotation: str | None = None
    approve_annotation: str | None = None
    job: JobView | None = None
    run: RunView | None = None
    candidate: VersionView | None = None
    champion: VersionView | None = None
    canary_phase: str | None = None
    registry_error: str | None = None


@dataclass(frozen=True)
class CreateJob:
    manifest: dict[str, Any]


@dataclass(frozen=True)
class RegisterCandidate:
    run_id: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class CreateCanary:
    manifest: dict[str, Any]


Action = CreateJob | RegisterCandidate | CreateCanary


@functools.lru_cache(maxsize=64)
def _registry(tracking_uri: str) -> MlflowRegistry:
    return MlflowRegistry(tracking_uri)


def _get(call: Any, *args: Any) -> Any | None:
    """A read that answers None for a missing object."""
    try:
        return call(*args, _request_timeout=10)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _monitor_view(body: dict[str, Any] | None) -> MonitorView | None:
    if body is None:
        return None
    status = body.get("status") or {}
    quality = status.get("quality") or {}
    evaluated = status.get("lastEvaluation")
    label = (status.get("labelDrift") or {}).get("verdict")
    return MonitorView(
        last_evaluation=datetime.fromisoformat(evaluated.replace("Z", "+00:00")) if evaluated else None,
        quality={
            "accuracy": quality.get("accuracy"),
            "precision": quality.get("precisionMacro"),
            "recall": quality.get("recallMacro"),
            "f1": quality.get("f1Macro"),
        },
        feature_psi={f["name"]: f["psi"] for f in status.get("features", []) if f.get("psi") is not None},
        label_drift=None if label is None else label == "Drift",
    )


def _job_view(name: str, body: Any | None) -> JobView:
    if body is None:
        return JobView(name, "Missing")
    status = body.status
    for condition in status.conditions or []:
        if condition.status == "True" and condition.type in ("Complete", "SuccessCriteriaMet"):
            return JobView(name, "Succeeded")
        if condition.status == "True" and condition.type in ("Failed", "FailureTarget"):
            return JobView(name, "Failed", f"{condition.reason}: {condition.message}")
    if status.succeeded:
        return JobView(name, "Succeeded")
    return JobView(name, "Active")


def _read_kubernetes(spec: RetrainPolicySpec, status: RetrainPolicyStatus, namespace: str) -> dict[str, Any]:
    client = api_client()
    custom = kubernetes.client.CustomObjectsApi(client)
    found: dict[str, Any] = {}
    if spec.monitor_ref is not None:
        found["monitor"] = _get(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, MODEL_MONITOR.plural, spec.monitor_ref.name)
    if status.current_run is not None and status.phase == "Training":
        job = _get(kubernetes.client.BatchV1Api(client).read_namespaced_job_status, status.current_run.job, namespace)
        found["job"] = _job_view(status.current_run.job, job)
    elif status.current_run is not None:
        found["job"] = JobView(status.current_run.job, "Succeeded")
    if status.canary is not None:
        canary = _get(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, CANARY_RELEASE.plural, status.canary)
        found["canary_phase"] = "Missing" if canary is None else (canary.get("status") or {}).get("phase") or "Pending"
    return found


def _version_view(registry: MlflowRegistry, info: Any) -> VersionView:
    metrics = registry.run_metrics(info.run_id) if info.run_id else {}
    return VersionView(version=info.version, run_id=info.run_id, metrics=metrics)


def _read_registry(spec: RetrainPolicySpec, status: RetrainPolicyStatus) -> dict[str, Any]:
    """The training run, the version registered from it, and the champion, when they matter."""
    if status.phase != "Registering" or status.current_run is None:
        return {}
    registry = _registry(spec.mlflow.tracking_uri)
    runs = registry.find_runs_by_tag(spec.experiment or f"{spec.model}-retraining", RUN_TAG, status.current_run.job)
    if not runs:
        return {}
    run = runs[0]
    found: dict[str, Any] = {"run": RunView(run.run_id, dict(run.metrics))}
    candidate = registry.find_version_by_run(spec.model, run.run_id)
    if candidate is not None:
        found["candidate"] = VersionView(candidate.version, candidate.run_id, dict(run.metrics))
        champion = registry.resolve_alias(spec.model, "champion")
        if champion is not None and champion.version != candidate.version:
            found["champion"] = _version_view(registry, champion)
    return found


async def gather_retrain_observations(
    spec: RetrainPolicySpec, status: RetrainPolicyStatus, *, namespace: str, annotations: dict[str, str]
) -> RetrainObservations:
    """Everything one tick needs. A failing API server raises (kopf retries the tick); a failing
    MLflow is recorded as registry_error, which holds the policy where it is."""
    kube = await asyncio.to_thread(_read_kubernetes, spec, status, namespace)
    monitor = kube.pop("monitor", None)
    try:
        registry = await asyncio.to_thread(_read_registry, spec, status)
        error = None
    except RegistryError as err:
        registry, error = {}, str(err)
    return RetrainObservations(
        monitor=_monitor_view(monitor),
        monitor_error=None if monitor is not None or spec.monitor_ref is None else f"ModelMonitor {spec.monitor_ref.name} not found",
        manual_annotation=annotations.get(MANUAL_ANNOTATION),
        approve_annotation=annotations.get(APPROVE_ANNOTATION),
        registry_error=error,
        **kube,
        **registry,
    )


def _create(call: Any, *args: Any) -> None:
    try:
        call(*args, _request_timeout=10)
    except ApiException as err:
        if err.status != 409:  # already there: a repeat after a restart
            raise


def _apply(spec: RetrainPolicySpec, namespace: str, action: Action) -> None:
    client = api_client()
    if isinstance(action, CreateJob):
        _create(kubernetes.client.BatchV1Api(client).create_namespaced_job, namespace, action.manifest)
    elif isinstance(action, CreateCanary):
        custom = kubernetes.client.CustomObjectsApi(client)
        _create(custom.create_namespaced_custom_object, GROUP, VERSION, namespace, CANARY_RELEASE.plural, action.manifest)
    elif isinstance(action, RegisterCandidate):
        registry = _registry(spec.mlflow.tracking_uri)
        version = registry.find_version_by_run(spec.model, action.run_id) or registry.register(
            spec.model, action.run_id, MODEL_ARTIFACT, tags=action.tags
        )
        registry.set_alias(spec.model, "challenger", version.version)


async def apply_retrain_actions(spec: RetrainPolicySpec, namespace: str, actions: list[Action]) -> str | None:
    """Carry out the actions in order; an MLflow failure is returned (the next tick retries)."""
    for action in actions:
        try:
            await asyncio.to_thread(_apply, spec, namespace, action)
        except RegistryError as err:
            return str(err)
    return None
