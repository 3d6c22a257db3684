"""Gathering what a ModelMonitor evaluation needs: a fixed set of concurrent Prometheus queries.

The set does not grow with the number of features: one query per metric family and window.
Each query's outcome is kept separately, so one failing query costs only the checks that need it.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping

from pydantic import ValidationError

from modelpilot.api import parse_duration
from modelpilot.api.common import PrometheusEndpoint
from modelpilot.api.monitor import ModelMonitorSpec
from modelpilot.api.profile import ReferenceProfile

from .kubernetes import KubernetesReader, ObjectMissing
from .mlflow import MlflowRegistry, RegistryError
from .prometheus import PrometheusClient, QueryFailed, Sample, Series
from .promql import PRESETS, render

__all__ = [
    "DeploymentState",
    "MonitorObservations",
    "QueryOutcome",
    "gather_monitor_observations",
    "instant_outcome",
    "observe_monitor",
    "prometheus_client",
    "query_plan",
    "registry_for",
]


@dataclass(frozen=True)
class QueryOutcome:
    """The answer of one query, or why there is none."""

    query: str
    samples: tuple[Sample, ...] = ()
    series: tuple[Series, ...] = ()
    error: QueryFailed | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class DeploymentState:
    name: str
    ready: int | None = None
    desired: int | None = None
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class MonitorObservations:
    """Everything one evaluation reads: query outcomes by name, at one evaluation time."""

    at: datetime
    version: str | None
    current: Mapping[str, QueryOutcome] = field(default_factory=dict)
    baseline: Mapping[str, QueryOutcome] = field(default_factory=dict)
    quality_series: QueryOutcome | None = None
    deployment: DeploymentState | None = None
    profile: ReferenceProfile | None = None
    # Set when the evaluation could not query at all (version, profile or credentials missing).
    blocked_reason: str | None = None
    blocked_message: str | None = None

    @property
    def query_count(self) -> int:
        return len(self.current) + len(self.baseline) + (self.quality_series is not None)


@dataclass(frozen=True)
class PlannedQuery:
    name: str
    promql: str
    at: datetime


def _baseline_end_and_window(spec: ModelMonitorSpec, at: datetime) -> tuple[datetime, timedelta] | None:
    baseline = spec.drift.baseline
    if baseline.mlflow_profile:
        return None
    if baseline.start is not None and baseline.end is not None:
        return baseline.end, baseline.end - baseline.start
    assert baseline.offset is not None
    window = parse_duration(baseline.window) if baseline.window else parse_duration(spec.drift.window)
    return at - parse_duration(baseline.offset), window


def query_plan(
    spec: ModelMonitorSpec, *, namespace: str, version: str | None, at: datetime
) -> tuple[list[PlannedQuery], list[PlannedQuery], PlannedQuery | None]:
    """The instant queries for the current window, for the baseline, and the quality range query."""
    preset = PRESETS[spec.metrics.preset]

    def planned(name: str, window: timedelta, when: datetime) -> PlannedQuery | None:
        promql = render(
            preset, name, model=spec.model.name, version=version, namespace=namespace, window=window,
            overrides=spec.metrics.overrides,
        )
        return PlannedQuery(name, promql, when) if promql else None

    performance = parse_duration(spec.performance.window)
    drift = parse_duration(spec.drift.window)
    windows = {
        "latencyBuckets": performance,
        "latencySum": performance,
        "requests": performance,
        "batchSize": performance,
        "feedback": parse_duration(spec.quality.window),
        "predictions": drift,
        "featureBuckets": drift,
        "featureCategories": drift,
    }
    current = [q for name, window in windows.items() if (q := planned(name, window, at))]
    baseline: list[PlannedQuery] = []
    reference = _baseline_end_and_window(spec, at)
    if reference is not None and (spec.drift.enabled or spec.label_drift.enabled):
        end, window = reference
        baseline = [q for name in ("predictions", "featureBuckets", "featureCategories") if (q := planned(name, window, end))]
    series = None
    if spec.degradation.enabled:
        series = planned("feedback", parse_duration(spec.degradation.step), at)
    return current, baseline, series


async def instant_outcome(client: PrometheusClient, query: PlannedQuery) -> QueryOutcome:
    """The answer of one instant query, or the failure; never raises."""
    try:
        return QueryOutcome(query.promql, samples=tuple(await client.instant(query.promql, query.at)))
    except QueryFailed as err:
        return QueryOutcome(query.promql, error=err)


async def _range(client: PrometheusClient, query: PlannedQuery, horizon: timedelta, step: timedelta) -> QueryOutcome:
    try:
        series = await client.range(query.promql, query.at - horizon + step, query.at, step)
        return QueryOutcome(query.promql, series=tuple(series))
    except QueryFailed as err:
        return QueryOutcome(query.promql, error=err)


async def observe_monitor(
    spec: ModelMonitorSpec,
    client: PrometheusClient,
    *,
    namespace: str,
    version: str | None,
    at: datetime,
    deployment: DeploymentState | None = None,
    profile: ReferenceProfile | None = None,
) -> MonitorObservations:
    """Run the query plan concurrently; never raises for a failing query."""
    current, baseline, series = query_plan(spec, namespace=namespace, version=version, at=at)
    horizon = parse_duration(spec.degradation.horizon)
    step = parse_duration(spec.degradation.step)
    answers = await asyncio.gather(
        *(instant_outcome(client, q) for q in current),
        *(instant_outcome(client, q) for q in baseline),
        *([_range(client, series, horizon, step)] if series else []),
    )
    current_answers = dict(zip((q.name for q in current), answers[: len(current)]))
    baseline_answers = dict(zip((q.name for q in baseline), answers[len(current) : len(current) + len(baseline)]))
    return MonitorObservations(
        at=at,
        version=version,
        current=current_answers,
        baseline=baseline_answers,
        quality_series=answers[-1] if series else None,
        deployment=deployment,
        profile=profile,
    )


@functools.lru_cache(maxsize=64)
def registry_for(tracking_uri: str) -> MlflowRegistry:
    """One registry client per tracking URI, shared by every resource that names it."""
    return MlflowRegistry(tracking_uri)


async def _version_and_profile(
    spec: ModelMonitorSpec,
) -> tuple[str | None, ReferenceProfile | None, tuple[str, str] | None]:
    """(version, reference profile, (reason, message) when blocked), as the spec says."""
    source = spec.model.version
    version = source.fixed if source is not None else None
    if spec.mlflow is None:
        return version, None, None
    registry = registry_for(spec.mlflow.tracking_uri)
    try:
        if source is not None and source.mlflow is not None:
            found = await asyncio.to_thread(registry.resolve_alias, source.mlflow.registered_model, source.mlflow.alias)
            if found is None:
                return None, None, (
                    "VersionUnresolved",
                    f"MLflow alias {source.mlflow.alias!r} of {source.mlflow.registered_model!r} is not set",
                )
            version = found.version
        profile = None
        if spec.drift.baseline.mlflow_profile:
            model = source.mlflow.registered_model if source and source.mlflow else spec.model.name
            if version is None:
                return None, None, ("NoReferenceProfile", "a reference profile needs spec.model.version")
            stored = await asyncio.to_thread(registry.load_profile, model, version)
            if stored is None:
                return version, None, (
                    "NoReferenceProfile",
                    f"no reference profile stored with {model} version {version}; run `modelpilot profile`",
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
    except Exception as err:  # the API server failing must not fail the whole evaluation
        return DeploymentState(name=name, error=f"reading Deployment {where}/{name}: {err}", reason="APIError")


async def prometheus_client(endpoint: PrometheusEndpoint, namespace: str, kube: KubernetesReader | None) -> PrometheusClient:
    """A client for ``endpoint``, with credentials from its Secrets; raises QueryFailed without them."""
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
                basic = (await kube.secret_value(namespace, name, "username"), await kube.secret_value(namespace, name, "password"))
        except ObjectMissing as err:
            raise QueryFailed("SecretNotFound", str(err), "") from None
    return PrometheusClient(endpoint.url, timeout=parse_duration(endpoint.timeout), bearer_token=token, basic_auth=basic)


async def gather_monitor_observations(
    spec: ModelMonitorSpec, *, namespace: str, at: datetime, kube: KubernetesReader | None
) -> MonitorObservations:
    """Everything one evaluation needs; failures are recorded in the result, never raised."""
    (version, profile, blocked), deployment = await asyncio.gather(
        _version_and_profile(spec), _deployment_state(spec, namespace, kube)
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
        return await observe_monitor(
            spec, client, namespace=namespace, version=version, at=at, deployment=deployment, profile=profile
        )
    finally:
        client.close()
