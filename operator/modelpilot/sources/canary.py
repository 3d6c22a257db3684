"""What a CanaryRelease reads and writes in the cluster, Prometheus, MLflow and webhooks.

Reads gather one tick's observations and never raise for a passing failure: it is recorded for
the decision to weigh. Writes are idempotent (server-side apply, conditional patches, alias
moves to a fixed version), so repeating a tick after a crash changes nothing twice.

Ownership: the candidate Deployment and Service are created and owned (ownerReference to the
release); the stable Deployment and Service are only read, but for one annotation on the stable
pod template at promotion (a `kubectl rollout restart`); route objects get only their weights.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelpilot.api import CANARY_RELEASE, GROUP, VERSION, parse_duration
from modelpilot.api.canary import CanaryReleaseSpec

from .kubernetes import KubernetesReader, api_client, get_resource
from .mlflow import RegistryError
from .observe import PlannedQuery, QueryOutcome, instant_outcome, prometheus_client, registry_for
from .prometheus import QueryFailed
from .routers import candidate_name, router_for
from .webhooks import HookAnswer, call_webhook

__all__ = [
    "FIELD_MANAGER",
    "RESTART_ANNOTATION",
    "AliasTarget",
    "CanaryCluster",
    "CanaryNeeds",
    "CanaryObservations",
    "CanaryPlan",
    "DeploymentView",
    "HookCall",
    "MetricAnswer",
    "MetricQueries",
]

RESTART_ANNOTATION = "modelpilot.dev/restartedAt"
FIELD_MANAGER = "modelpilot"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeploymentView:
    """What a release reads of a Deployment: its counts, and the body to build from."""

    name: str
    replicas: int
    generation: int
    observed_generation: int
    status_replicas: int
    updated: int
    ready: int
    labels: Mapping[str, str] = field(default_factory=dict)
    template_annotations: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DeploymentView:
        meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status") or {}
        return cls(
            name=meta.get("name", ""),
            replicas=int(spec.get("replicas", 1)),
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            status_replicas=int(status.get("replicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            labels=meta.get("labels") or {},
            template_annotations=(spec.get("template", {}).get("metadata") or {}).get("annotations") or {},
            body=body,
        )

    @property
    def rolled_out(self) -> bool:
        """Every replica runs the current template and is ready, as `kubectl rollout status` judges."""
        return (
            self.observed_generation >= self.generation
            and self.updated == self.replicas
            and self.status_replicas == self.updated
            and self.ready >= self.updated
        )


@dataclass(frozen=True)
class MetricQueries:
    candidate: str
    stable: str


@dataclass(frozen=True)
class MetricAnswer:
    candidate: QueryOutcome
    stable: QueryOutcome


@dataclass(frozen=True)
class HookCall:
    """One webhook to call this tick, with the body the decision layer wrote."""

    type: str
    secret: str
    key: str
    timeout: timedelta
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class CanaryNeeds:
    """What one tick must read beyond the Deployments: analysis queries, the alias, webhooks."""

    at: datetime
    queries: Mapping[str, MetricQueries] = field(default_factory=dict)
    alias: bool = False
    hooks: tuple[HookCall, ...] = ()


@dataclass(frozen=True)
class CanaryObservations:
    """One tick's view of the world. ``problem`` (reason, message) says why the cluster could not
    be read; the decision then holds everything as it is."""

    stable: DeploymentView | None = None
    stable_service: Mapping[str, Any] | None = None
    candidate: DeploymentView | None = None
    actual_weight: float | None = None
    problem: tuple[str, str] | None = None
    alias_holder: str | None = None
    registry_error: str | None = None
    metrics: Mapping[str, MetricAnswer] = field(default_factory=dict)
    hooks: Mapping[str, HookAnswer] = field(default_factory=dict)


@dataclass(frozen=True)
class AliasTarget:
    """Where an MLflow alias must point (None: nowhere), and tags the version gets first."""

    model: str
    alias: str
    version: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CanaryPlan:
    """What must be true after this tick, applied in order by :meth:`CanaryCluster.apply`.

    ``drain_first``: the router weight moves before the candidate Deployment changes (traffic
    leaves pods before they go away); otherwise after (pods exist before traffic comes).
    """

    deployment: Mapping[str, Any]
    weight: int
    drain_first: bool
    service: Mapping[str, Any] | None = None
    restart: str | None = None
    alias: AliasTarget | None = None


def _raw(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A client call's JSON body as sent by the API server (camelCase, nothing dropped)."""
    response = call(*args, _preload_content=False, _request_timeout=10, **kwargs)
    return json.loads(response.data)


class CanaryCluster:
    """Reads and writes of the CanaryRelease handler."""

    def __init__(self, kube: KubernetesReader):
        self.kube = kube

    @property
    def _apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(api_client())

    @property
    def _core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(api_client())

    # -- the release itself ------------------------------------------------------------------

    async def read_release(self, namespace: str, name: str) -> dict[str, Any]:
        """The release as stored now: a timer's body may predate the status the last tick wrote."""
        return await asyncio.to_thread(get_resource, CANARY_RELEASE.plural, namespace, name)

    async def write_status(self, namespace: str, name: str, resource_version: str, patch: Mapping[str, Any]) -> bool:
        """Merge ``patch`` into the status if the release is still at ``resource_version``.

        False when someone wrote in between: the tick was decided on a stale view, and the next
        one decides again. This is what keeps two ticks (or two operators) from both making a
        transition.
        """
        custom = kubernetes.client.CustomObjectsApi(api_client())
        body = {"metadata": {"resourceVersion": resource_version}, "status": dict(patch)}
        try:
            await asyncio.to_thread(
                custom.patch_namespaced_custom_object_status, GROUP, VERSION, namespace, CANARY_RELEASE.plural, name,
                body, _content_type="application/merge-patch+json", _request_timeout=10,
            )
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    # -- observing ---------------------------------------------------------------------------

    async def observe(
        self, spec: CanaryReleaseSpec, needs: CanaryNeeds, *, namespace: str, release: str
    ) -> CanaryObservations:
        workloads, metrics, alias, hooks = await asyncio.gather(
            self._workloads(spec, namespace, release),
            self._metrics(spec, needs, namespace),
            self._alias(spec, needs),
            self._hooks(needs, namespace),
        )
        return CanaryObservations(**workloads, **alias, metrics=metrics, hooks=hooks)

    async def _workloads(self, spec: CanaryReleaseSpec, namespace: str, release: str) -> dict[str, Any]:
        target = spec.target
        found: dict[str, Any] = {}
        try:
            body = await asyncio.to_thread(_raw, self._apps.read_namespaced_deployment, target.deployment, namespace)
            found["stable"] = stable = DeploymentView.from_body(body)
        except ApiException as err:
            return {"problem": _problem(err, "StableNotFound", f"stable Deployment {namespace}/{target.deployment}")}
        try:
            body = await asyncio.to_thread(_raw, self._apps.read_namespaced_deployment, candidate_name(release), namespace)
            found["candidate"] = DeploymentView.from_body(body)
        except ApiException as err:
            if err.status != 404:  # a candidate not created yet is no problem
                return {**found, "problem": _problem(err, "APIError", "candidate Deployment")}
        if spec.router.type != "replicas" and target.service is not None:
            try:
                found["stable_service"] = await asyncio.to_thread(
                    _raw, self._core.read_namespaced_service, target.service, namespace
                )
            except ApiException as err:
                return {**found, "problem": _problem(err, "StableServiceNotFound", f"stable Service {namespace}/{target.service}")}
        candidate = found.get("candidate")
        try:
            found["actual_weight"] = await router_for(spec, namespace, release).read_weight(
                stable.ready, candidate.ready if candidate else 0
            )
        except ApiException as err:
            return {**found, "problem": _problem(err, "RouteNotFound", f"the {spec.router.type} route")}
        return found

    async def _metrics(self, spec: CanaryReleaseSpec, needs: CanaryNeeds, namespace: str) -> dict[str, MetricAnswer]:
        if not needs.queries:
            return {}
        try:
            client = await prometheus_client(spec.analysis.prometheus, namespace, self.kube)
        except QueryFailed as err:
            failed = QueryOutcome(err.query, error=err)
            return {name: MetricAnswer(failed, failed) for name in needs.queries}
        try:
            names = list(needs.queries)
            planned = [
                PlannedQuery(name, promql, needs.at)
                for name in names
                for promql in (needs.queries[name].candidate, needs.queries[name].stable)
            ]
            answers = await asyncio.gather(*(instant_outcome(client, q) for q in planned))
        finally:
            client.close()
        return {name: MetricAnswer(answers[2 * i], answers[2 * i + 1]) for i, name in enumerate(names)}

    async def _alias(self, spec: CanaryReleaseSpec, needs: CanaryNeeds) -> dict[str, Any]:
        if not needs.alias or spec.mlflow is None:
            return {}
        registry = registry_for(spec.mlflow.tracking_uri)
        try:
            found = await asyncio.to_thread(registry.resolve_alias, spec.model, spec.alias)
        except RegistryError as err:
            return {"registry_error": str(err)}
        return {"alias_holder": found.version if found else None}

    async def _hooks(self, needs: CanaryNeeds, namespace: str) -> dict[str, HookAnswer]:
        """One answer per hook type: yes when every hook of that type said yes."""
        answers = await asyncio.gather(
            *(call_webhook(self.kube, namespace, h.secret, h.key, h.payload, h.timeout) for h in needs.hooks)
        )
        by_type: dict[str, list[HookAnswer]] = {}
        for hook, answer in zip(needs.hooks, answers):
            by_type.setdefault(hook.type, []).append(answer)
        return {
            type_: HookAnswer(all(a.ok for a in got), "; ".join(a.message for a in got if not a.ok) or got[0].message)
            for type_, got in by_type.items()
        }

    # -- acting ------------------------------------------------------------------------------

    async def apply(self, spec: CanaryReleaseSpec, plan: CanaryPlan, *, namespace: str, release: str) -> list[str]:
        """Make the plan true; returns what failed (each is retried by the next tick)."""
        router = router_for(spec, namespace, release)
        steps: list[tuple[str, Any]] = []
        if plan.drain_first:
            steps.append(("router weight", lambda: router.set_weight(plan.weight)))
        if plan.service is not None:
            service = plan.service
            steps.append(("candidate Service", lambda: self._apply_object(self._core.patch_namespaced_service, service, namespace)))
        deployment = plan.deployment
        steps.append(("candidate Deployment", lambda: self._apply_object(self._apps.patch_namespaced_deployment, deployment, namespace)))
        if not plan.drain_first:
            steps.append(("router weight", lambda: router.set_weight(plan.weight)))
        if plan.restart is not None:
            restart = plan.restart
            steps.append(("stable restart", lambda: self._restart(spec.target.deployment, restart, namespace)))
        if plan.alias is not None and spec.mlflow is not None:
            tracking_uri, alias = spec.mlflow.tracking_uri, plan.alias
            steps.append(("MLflow alias", lambda: asyncio.to_thread(_move_alias, tracking_uri, alias)))
        failures = []
        for what, step in steps:
            try:
                await step()
            except (ApiException, RegistryError) as err:
                failures.append(f"{what}: {err}")
        return failures

    async def _apply_object(self, patch: Any, manifest: Mapping[str, Any], namespace: str) -> None:
        """Server-side apply: idempotent, and only the fields in ``manifest`` become ours."""
        await asyncio.to_thread(
            _raw, patch, manifest["metadata"]["name"], namespace, dict(manifest), field_manager=FIELD_MANAGER,
            force=True, _content_type="application/apply-patch+yaml",
        )

    async def _restart(self, deployment: str, value: str, namespace: str) -> None:
        body = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: value}}}}}
        await asyncio.to_thread(
            _raw, self._apps.patch_namespaced_deployment, deployment, namespace, body, field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )

    async def notify(self, spec: CanaryReleaseSpec, namespace: str, payloads: list[Mapping[str, Any]]) -> None:
        """Post each transition to every event webhook, once, best effort."""
        calls = [
            call_webhook(self.kube, namespace, hook.url_secret.name, hook.url_secret.key, payload, parse_duration(hook.timeout))
            for hook in spec.webhooks
            if hook.type == "event"
            for payload in payloads
        ]
        for answer in await asyncio.gather(*calls):
            if not answer.ok:
                log.warning("event webhook of %s: %s", namespace, answer.message)


def _problem(err: ApiException, missing: str, what: str) -> tuple[str, str]:
    """(reason, message) of a failed read: ``missing`` for a 404, else an API error."""
    if err.status == 404:
        return missing, f"{what} not found"
    return "APIError", f"reading {what}: {err.status} {err.reason}"


def _move_alias(tracking_uri: str, target: AliasTarget) -> None:
    registry = registry_for(tracking_uri)
    if target.version is None:
        registry.delete_alias(target.model, target.alias)
        return
    # Tags first: the alias pointing at the version is what marks this step done.
    if target.tags:
        registry.tag_version(target.model, target.version, target.tags)
    registry.set_alias(target.model, target.alias, target.version)
