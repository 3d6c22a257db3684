"""What a ModelMonitor evaluation reads: its query plan run concurrently against Prometheus, the
model version and reference profile from MLflow, and the serving Deployment's replicas.

Each query's outcome is kept separately, so one failing query costs only the checks that need it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import ValidationError

from modelpilot.api import parse_duration
from modelpilot.api.common import PrometheusEndpoint
from modelpilot.api.monitor import ModelMonitorSpec
from modelpilot.api.profile import ReferenceProfile
from modelpilot.reconcile.monitor import DeploymentState, MonitorObservations, query_plan
from modelpilot.reconcile.monitor.resources import ResourcePlan, resource_plan
from modelpilot.reconcile.monitor.rules import firing_alerts_query
from modelpilot.reconcile.queries import PlannedQuery, QueryFailed, QueryOutcome

from .kubernetes import KubeError, KubernetesReader, ObjectMissing
from .mlflow import RegistryError, registry_for
from .outbound import allowed
from .pools import MLFLOW
from .prometheus import PrometheusClient, instant_outcome, range_outcome

__all__ = ["observe_monitor", "prometheus_client", "query_monitor"]


async def query_monitor(
    spec: ModelMonitorSpec,
    client: PrometheusClient,
    *,
    namespace: str,
    version: str | None,
    at: datetime,
    deployment: DeploymentState | None = None,
    profile: ReferenceProfile | None = None,
    monitor: str | None = None,
) -> MonitorObservations:
    """Run the query plan concurrently; never raises for a failing query. With ``monitor``, also
    ask which of its alerts fire."""
    current, baseline, series = query_plan(spec, namespace=namespace, version=version, at=at)
    horizon = parse_duration(spec.degradation.horizon)
    step = parse_duration(spec.degradation.step)
    firing = PlannedQuery("firingAlerts", firing_alerts_query(namespace, monitor), at) if monitor else None
    model_answers = asyncio.gather(
        *(instant_outcome(client, q) for q in current),
        *(instant_outcome(client, q) for q in baseline),
        *([range_outcome(client, series, horizon, step)] if series else []),
        *([instant_outcome(client, firing)] if firing else []),
    )
    answers, resource_answers = await asyncio.gather(
        model_answers, _resource_outcomes(client, resource_plan(spec, namespace=namespace, at=at))
    )
    answers = list(answers)
    firing_answer = answers.pop() if firing else None
    current_answers = dict(zip((q.name for q in current), answers[: len(current)]))
    baseline_answers = dict(zip((q.name for q in baseline), answers[len(current) : len(current) + len(baseline)]))
    return MonitorObservations(
        at=at,
        version=version,
        namespace=namespace,
        current=current_answers,
        baseline=baseline_answers,
        quality_series=answers[-1] if series else None,
        firing=firing_answer,
        resources=resource_answers,
        deployment=deployment,
        profile=profile,
    )


async def _resource_outcomes(client: PrometheusClient, plan: ResourcePlan | None) -> dict[str, QueryOutcome] | None:
    """The answers of the resource queries, by name; None when spec.resources is off."""
    if plan is None:
        return None
    outcomes = await asyncio.gather(
        *(range_outcome(client, q, plan.horizon, plan.step) for q in plan.ranges),
        *(instant_outcome(client, q) for q in plan.instants),
    )
    return dict(zip((q.name for q in [*plan.ranges, *plan.instants]), outcomes))


async def _version_and_profile(
    spec: ModelMonitorSpec, namespace: str
) -> tuple[str | None, ReferenceProfile | None, tuple[str, str] | None]:
    """(version, reference profile, (reason, message) when blocked), as the spec says."""
    source = spec.model.version
    version = source.fixed if source is not None else None
    if spec.mlflow is None:
        return version, None, None
    try:
        registry = registry_for(spec.mlflow.tracking_uri)
        if source is not None and source.mlflow is not None:
            found = await MLFLOW.run(namespace, registry.resolve_alias, source.mlflow.registered_model, source.mlflow.alias)
            if found is None:
                return (
                    None,
                    None,
                    (
                        "VersionUnresolved",
                        f"MLflow alias {source.mlflow.alias!r} of {source.mlflow.registered_model!r} is not set",
                    ),
                )
            version = found.version
        profile = None
        if spec.drift.baseline.mlflow_profile:
            model = source.mlflow.registered_model if source and source.mlflow else spec.model.name
            if version is None:
                return None, None, ("NoReferenceProfile", "a reference profile needs spec.model.version")
            stored = await MLFLOW.run(namespace, registry.load_profile, model, version)
            if stored is None:
                return (
                    version,
                    None,
                    (
                        "NoReferenceProfile",
                        f"no reference profile stored with {model} version {version}; run `modelpilot profile`",
                    ),
                )
            try:
                profile = ReferenceProfile.model_validate(stored)
            except ValidationError as err:
                return version, None, ("InvalidReferenceProfile", f"the profile of {model} version {version}: {err}")
        return version, profile, None
    except RegistryError as err:
        return version, None, ("RegistryUnavailable", f"MLflow: {err}")


async def _deployment_state(spec: ModelMonitorSpec, namespace: str, kube: KubernetesReader | None) -> DeploymentState | None:
    if spec.deployment is None:
        return None
    name, where = spec.deployment.name, spec.deployment.namespace or namespace
    if kube is None:
        return DeploymentState(name=name, error="not checked: no cluster to read it from", reason="NotChecked")
    try:
        ready, desired = await kube.deployment_replicas(where, name)
        return DeploymentState(name=name, ready=ready, desired=desired)
    except ObjectMissing:
        return DeploymentState(name=name, error=f"Deployment {where}/{name} does not exist", reason="DeploymentNotFound")
    except KubeError as err:  # the API server failing must not fail the whole evaluation
        return DeploymentState(name=name, error=f"reading Deployment {where}/{name}: {err}", reason=err.reason)


async def prometheus_client(endpoint: PrometheusEndpoint, namespace: str, kube: KubernetesReader | None) -> PrometheusClient:
    """A client for ``endpoint``, with credentials from its Secrets; raises QueryFailed without them."""
    if not allowed(endpoint.url):
        raise QueryFailed("URLNotAllowed", f"{endpoint.url} is under no URL prefix the operator allows", "")
    token = basic = None
    if endpoint.bearer_token_secret is not None or endpoint.basic_auth_secret is not None:
        if kube is None:
            raise QueryFailed("AuthUnavailable", "Prometheus credentials come from a Secret, which needs a cluster", "")
        try:
            if endpoint.bearer_token_secret is not None:
                ref = endpoint.bearer_token_secret
                token = await kube.secret_value(namespace, ref.name, ref.key)
            if endpoint.basic_auth_secret is not None:
                name = endpoint.basic_auth_secret.name
                basic = (
                    await kube.secret_value(namespace, name, "username"),
                    await kube.secret_value(namespace, name, "password"),
                )
        except ObjectMissing as err:
            raise QueryFailed("SecretNotFound", str(err), "") from None
        except KubeError as err:
            raise QueryFailed(err.reason, f"reading the credentials' Secret: {err}", "") from None
    return PrometheusClient(
        endpoint.url, timeout=parse_duration(endpoint.timeout), bearer_token=token, basic_auth=basic, namespace=namespace
    )


async def observe_monitor(
    spec: ModelMonitorSpec, *, namespace: str, at: datetime, kube: KubernetesReader | None, monitor: str | None = None
) -> MonitorObservations:
    """Everything one evaluation needs; failures are recorded in the result, never raised."""
    (version, profile, blocked), deployment = await asyncio.gather(
        _version_and_profile(spec, namespace), _deployment_state(spec, namespace, kube)
    )
    if blocked is None:
        try:
            client = await prometheus_client(spec.prometheus, namespace, kube)
        except QueryFailed as err:
            blocked = (err.reason, err.message)
    if blocked is not None:
        return MonitorObservations(
            at=at, version=version, deployment=deployment, blocked_reason=blocked[0], blocked_message=blocked[1]
        )
    try:
        return await query_monitor(
            spec, client, namespace=namespace, version=version, at=at, deployment=deployment, profile=profile, monitor=monitor
        )
    finally:
        client.close()
