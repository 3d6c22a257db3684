"""What a RetrainPolicy reads and writes: its monitor's status, training Jobs, MLflow runs and
versions, CanaryReleases. Reads never raise for a passing MLflow failure; writes tolerate
"already exists", so repeating one after a restart is harmless."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes

from modelpilot.api import CANARY_RELEASE, GROUP, MODEL_MONITOR, VERSION, load_status
from modelpilot.api.retrain import RetrainPolicySpec, RetrainPolicyStatus
from modelpilot.reconcile import PolicyRef
from modelpilot.reconcile.retrain import (
    APPROVE_ANNOTATION,
    CHALLENGER_ALIAS,
    MANUAL_ANNOTATION,
    MODEL_ARTIFACT,
    ROLLBACK_ANNOTATION,
    RUN_TAG,
    CreateCanary,
    CreateJob,
    JobCondition,
    JobView,
    RegisterCandidate,
    RetrainAction,
    RetrainObservations,
    RunView,
    TagVersion,
    VersionView,
    champion_alias,
    job_view,
    monitor_view,
)

from .kubernetes import KubeError, api_client, kube_call
from .mlflow import MlflowRegistry, ModelVersionInfo, RegistryError, registry_for
from .pools import KUBERNETES, MLFLOW

__all__ = ["apply_retrain_actions", "observe_retrain"]


def _job(name: str, body: Any | None) -> JobView:
    if body is None:
        return job_view(name, None, 0)
    conditions = [JobCondition(c.type, c.status, c.reason or "", c.message or "") for c in body.status.conditions or []]
    return job_view(name, conditions, int(body.status.succeeded or 0))


def _read_kubernetes(spec: RetrainPolicySpec, status: RetrainPolicyStatus, namespace: str) -> dict[str, Any]:
    client = api_client()
    custom = kubernetes.client.CustomObjectsApi(client)
    found: dict[str, Any] = {}
    if spec.monitor_ref is not None:
        body = kube_call(
            custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            MODEL_MONITOR.plural,
            spec.monitor_ref.name,
            missing_ok=True,
        )
        if body is None:
            found["monitor_error"] = f"ModelMonitor {spec.monitor_ref.name} not found"
        else:
            found["monitor"] = monitor_view(load_status(MODEL_MONITOR, body.get("status")))
    if status.current_run is not None and status.phase == "Training":
        job = kube_call(
            kubernetes.client.BatchV1Api(client).read_namespaced_job, status.current_run.job, namespace, missing_ok=True
        )
        found["job"] = _job(status.current_run.job, job)
    elif status.current_run is not None:
        found["job"] = JobView(status.current_run.job, "Succeeded")
    if status.canary is not None:
        found["canary_phase"] = _phase(
            kube_call(
                custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                CANARY_RELEASE.plural,
                status.canary,
                missing_ok=True,
            )
        )
    rollback = status.production.rollback_canary if status.production else None
    if rollback is not None:
        found["rollback_phase"] = _phase(
            kube_call(
                custom.get_namespaced_custom_object, GROUP, VERSION, namespace, CANARY_RELEASE.plural, rollback, missing_ok=True
            )
        )
    return found


def _phase(canary: Mapping[str, Any] | None) -> str:
    return "Missing" if canary is None else (canary.get("status") or {}).get("phase") or "Pending"


def _version_view(registry: MlflowRegistry, info: ModelVersionInfo) -> VersionView:
    metrics = registry.run_metrics(info.run_id) if info.run_id else {}
    return VersionView(version=info.version, run_id=info.run_id, metrics=metrics)


def _read_registry(spec: RetrainPolicySpec, status: RetrainPolicyStatus) -> dict[str, Any]:
    """The training run, the version registered from it, and the champion, when they matter."""
    if status.phase != "Registering" or status.current_run is None:
        return {}
    registry = registry_for(spec.mlflow.tracking_uri)
    runs = registry.find_runs_by_tag(spec.experiment or f"{spec.model}-retraining", RUN_TAG, status.current_run.job)
    if not runs:
        return {}
    run = runs[0]
    found: dict[str, Any] = {"run": RunView(run.run_id, dict(run.metrics))}
    candidate = registry.find_version_by_run(spec.model, run.run_id)
    if candidate is not None:
        found["candidate"] = VersionView(candidate.version, candidate.run_id, dict(run.metrics))
        champion = registry.resolve_alias(spec.model, champion_alias(spec))
        if champion is not None and champion.version != candidate.version:
            found["champion"] = _version_view(registry, champion)
    return found


async def observe_retrain(
    spec: RetrainPolicySpec, status: RetrainPolicyStatus, *, namespace: str, annotations: Mapping[str, str]
) -> RetrainObservations:
    """Everything one tick needs. A failing API server raises (the tick is retried); a failing
    MLflow is recorded as registry_error, which holds the policy where it is."""
    kube = await KUBERNETES.run(namespace, _read_kubernetes, spec, status, namespace)
    try:
        registry = await MLFLOW.run(namespace, _read_registry, spec, status)
        error = None
    except RegistryError as err:
        registry, error = {}, str(err)
    return RetrainObservations(
        manual_annotation=annotations.get(MANUAL_ANNOTATION),
        approve_annotation=annotations.get(APPROVE_ANNOTATION),
        rollback_annotation=annotations.get(ROLLBACK_ANNOTATION),
        registry_error=error,
        **kube,
        **registry,
    )


def _apply(spec: RetrainPolicySpec, namespace: str, action: RetrainAction) -> None:
    client = api_client()
    if isinstance(action, CreateJob):
        kube_call(kubernetes.client.BatchV1Api(client).create_namespaced_job, namespace, action.manifest, exists_ok=True)
    elif isinstance(action, CreateCanary):
        custom = kubernetes.client.CustomObjectsApi(client)
        kube_call(
            custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            CANARY_RELEASE.plural,
            action.manifest,
            exists_ok=True,
        )
    elif isinstance(action, TagVersion):
        registry_for(spec.mlflow.tracking_uri).tag_version(spec.model, action.version, action.tags)
    elif isinstance(action, RegisterCandidate):
        registry = registry_for(spec.mlflow.tracking_uri)
        version = registry.find_version_by_run(spec.model, action.run_id) or registry.register(
            spec.model, action.run_id, MODEL_ARTIFACT, tags=action.tags
        )
        registry.set_alias(spec.model, CHALLENGER_ALIAS, version.version)


async def apply_retrain_actions(spec: RetrainPolicySpec, ref: PolicyRef, actions: Sequence[RetrainAction]) -> list[str]:
    """Carry out the actions in order; what failed is returned (the next tick asks again)."""
    for action in actions:
        try:
            pool = MLFLOW if isinstance(action, (RegisterCandidate, TagVersion)) else KUBERNETES
            await pool.run(ref.namespace, _apply, spec, ref.namespace, action)
        except (RegistryError, KubeError) as err:
            return [f"{type(action).__name__}: {err}"]
    return []
