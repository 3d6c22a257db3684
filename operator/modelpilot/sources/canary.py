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
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import kubernetes

from modelpilot.api import parse_duration
from modelpilot.api.canary import CanaryReleaseSpec, CanaryReleaseStatus
from modelpilot.reconcile import ReleaseRef
from modelpilot.reconcile.canary import (
    RESTART_ANNOTATION,
    AliasTarget,
    CanaryAction,
    CanaryNeeds,
    CanaryObservations,
    CanaryPlan,
    DeploymentView,
    HookAnswer,
    MetricAnswer,
    Notification,
    answers_by_type,
    candidate_name,
    controller_uid,
    observation_needs,
)
from modelpilot.reconcile.queries import PlannedQuery, QueryFailed, QueryOutcome

from .kubernetes import KubeError, KubernetesReader, ObjectMissing, api_client, kube_call
from .mlflow import RegistryError, registry_for
from .monitor import prometheus_client
from .pools import KUBERNETES, MLFLOW
from .prometheus import instant_outcome
from .routers import router_for
from .webhooks import call_webhook

__all__ = ["FIELD_MANAGER", "CanaryCluster"]

FIELD_MANAGER = "modelpilot"

log = logging.getLogger(__name__)


def _raw(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """A client call's JSON body as sent by the API server (camelCase, nothing dropped)."""
    response = kube_call(call, *args, _preload_content=False, **kwargs)
    body: dict[str, Any] = json.loads(response.data)
    return body


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

    # -- observing ---------------------------------------------------------------------------

    async def observe_canary(
        self, spec: CanaryReleaseSpec, status: CanaryReleaseStatus, *, ref: ReleaseRef, now: datetime
    ) -> CanaryObservations:
        """One tick's observations: what ``observation_needs`` asks for, and the workloads."""
        needs = observation_needs(spec, status, ref=ref, now=now)
        namespace, release = ref.namespace, ref.name
        workloads, metrics, alias, hooks = await asyncio.gather(
            self._workloads(spec, namespace, release),
            self._metrics(spec, needs, namespace),
            self._alias(spec, needs, namespace),
            self._hooks(needs, namespace),
        )
        return CanaryObservations(**workloads, **alias, metrics=metrics, hooks=hooks)

    async def _workloads(self, spec: CanaryReleaseSpec, namespace: str, release: str) -> dict[str, Any]:
        target = spec.target
        found: dict[str, Any] = {}
        try:
            body = await KUBERNETES.run(namespace, _raw, self._apps.read_namespaced_deployment, target.deployment, namespace)
            found["stable"] = stable = DeploymentView.from_body(body)
        except KubeError as err:
            return {"problem": _problem(err, "StableNotFound", f"stable Deployment {namespace}/{target.deployment}")}
        try:
            body = await KUBERNETES.run(
                namespace, _raw, self._apps.read_namespaced_deployment, candidate_name(release), namespace
            )
            found["candidate"] = DeploymentView.from_body(body)
        except ObjectMissing:
            pass  # a candidate not created yet is no problem
        except KubeError as err:
            return {**found, "problem": _problem(err, "APIError", "candidate Deployment")}
        if spec.router.type != "replicas" and target.service is not None:
            try:
                found["stable_service"] = await KUBERNETES.run(
                    namespace, _raw, self._core.read_namespaced_service, target.service, namespace
                )
            except KubeError as err:
                return {
                    **found,
                    "problem": _problem(err, "StableServiceNotFound", f"stable Service {namespace}/{target.service}"),
                }
            try:
                own = await KUBERNETES.run(
                    namespace, _raw, self._core.read_namespaced_service, candidate_name(release), namespace
                )
                found["candidate_service"] = (True, controller_uid(own))
            except ObjectMissing:
                pass  # created by the first plan
            except KubeError as err:
                return {**found, "problem": _problem(err, "APIError", "candidate Service")}
        candidate = found.get("candidate")
        try:
            found["actual_weight"] = await router_for(spec, namespace, release).read_weight(
                stable.ready, candidate.ready if candidate else 0
            )
        except KubeError as err:
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

    async def _alias(self, spec: CanaryReleaseSpec, needs: CanaryNeeds, namespace: str) -> dict[str, Any]:
        if not needs.alias or spec.mlflow is None:
            return {}
        try:
            registry = registry_for(spec.mlflow.tracking_uri)
            found = await MLFLOW.run(namespace, registry.resolve_alias, spec.model, spec.alias)
        except RegistryError as err:
            return {"registry_error": str(err)}
        return {"alias_holder": found.version if found else None}

    async def _hooks(self, needs: CanaryNeeds, namespace: str) -> dict[str, HookAnswer]:
        """One answer per hook type: yes when every hook of that type said yes."""
        answers = await asyncio.gather(
            *(call_webhook(self.kube, namespace, h.secret, h.key, h.payload, h.timeout) for h in needs.hooks)
        )
        return answers_by_type(needs.hooks, answers)

    # -- acting ------------------------------------------------------------------------------

    async def apply_canary_actions(self, spec: CanaryReleaseSpec, ref: ReleaseRef, actions: Sequence[CanaryAction]) -> list[str]:
        """Make the plan true and send the notifications; returns what failed (each plan step
        is retried by the next tick; notifications are best effort)."""
        failures: list[str] = []
        for action in actions:
            if isinstance(action, Notification):
                await self._notify(spec, ref.namespace, action.payloads)
            else:
                failures += await self._apply_plan(spec, action, namespace=ref.namespace, release=ref.name)
        return failures

    async def _apply_plan(self, spec: CanaryReleaseSpec, plan: CanaryPlan, *, namespace: str, release: str) -> list[str]:
        router = router_for(spec, namespace, release)
        steps: list[tuple[str, Any]] = []
        if plan.drain_first:
            steps.append(("router weight", lambda: router.set_weight(plan.weight, plan.mirror)))
        if plan.service is not None:
            service = plan.service
            steps.append(
                ("candidate Service", lambda: self._apply_object(self._core.patch_namespaced_service, service, namespace))
            )
        deployment = plan.deployment
        steps.append(
            ("candidate Deployment", lambda: self._apply_object(self._apps.patch_namespaced_deployment, deployment, namespace))
        )
        if not plan.drain_first:
            steps.append(("router weight", lambda: router.set_weight(plan.weight, plan.mirror)))
        if plan.restart is not None:
            restart = plan.restart
            steps.append(("stable restart", lambda: self._restart(spec.target.deployment, restart, namespace)))
        if plan.alias is not None and spec.mlflow is not None:
            tracking_uri, alias = spec.mlflow.tracking_uri, plan.alias
            steps.append(("MLflow alias", lambda: MLFLOW.run(namespace, _move_alias, tracking_uri, alias)))
        failures = []
        for what, step in steps:
            try:
                await step()
            except (KubeError, RegistryError) as err:
                failures.append(f"{what}: {err}")
        return failures

    async def _apply_object(self, patch: Any, manifest: Mapping[str, Any], namespace: str) -> None:
        """Server-side apply: idempotent, and only the fields in ``manifest`` become ours."""
        await KUBERNETES.run(
            namespace,
            _raw,
            patch,
            manifest["metadata"]["name"],
            namespace,
            dict(manifest),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    async def _restart(self, deployment: str, value: str, namespace: str) -> None:
        body = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: value}}}}}
        await KUBERNETES.run(
            namespace,
            _raw,
            self._apps.patch_namespaced_deployment,
            deployment,
            namespace,
            body,
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )

    async def _notify(self, spec: CanaryReleaseSpec, namespace: str, payloads: Sequence[Mapping[str, Any]]) -> None:
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


def _problem(err: KubeError, missing: str, what: str) -> tuple[str, str]:
    """(reason, message) of a failed read: ``missing`` for a 404, else the API error's reason."""
    if isinstance(err, ObjectMissing):
        return missing, f"{what} not found"
    return err.reason, f"reading {what}: {err}"


def _move_alias(tracking_uri: str, target: AliasTarget) -> None:
    registry = registry_for(tracking_uri)
    if target.version is None:
        registry.delete_alias(target.model, target.alias)
        return
    # Tags first: the alias pointing at the version is what marks this step done.
    if target.tags:
        registry.tag_version(target.model, target.version, target.tags)
    registry.set_alias(target.model, target.alias, target.version)
