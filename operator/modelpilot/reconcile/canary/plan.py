"""What must be true in the cluster after a CanaryRelease tick, computed from the new status alone:
the candidate Deployment (and Service) at the wanted replicas, the router weight, the stable
restart annotation and the MLflow alias. Applying it again changes nothing."""

from __future__ import annotations

import math

from .needs import TERMINAL, restoring_alias
from .objects import build_candidate_deployment, build_candidate_service
from .observations import RESTART_ANNOTATION, AliasTarget, CanaryPlan
from .phases import ReleaseTick

__all__ = ["build_plan"]


def build_plan(tick: ReleaseTick) -> CanaryPlan:
    s, stable, spec = tick.status, tick.obs.stable, tick.spec
    assert stable is not None and s.candidate_version is not None
    replicas, weight = tick.desired()
    actual = tick.obs.actual_weight or 0.0
    if weight > actual and not tick.candidate_ready():
        weight = math.floor(actual)  # no more traffic to candidate pods that are not ready
    service_selector = (tick.obs.stable_service or {}).get("spec", {}).get("selector")
    deployment = build_candidate_deployment(
        spec,
        stable.body,
        tick.ref,
        replicas=replicas,
        version=s.candidate_version,
        stable_service_selector=service_selector,
    )
    service = None
    if spec.router.type != "replicas" and tick.obs.stable_service is not None:
        service = build_candidate_service(spec, tick.obs.stable_service, tick.ref, version=s.candidate_version)
    return CanaryPlan(
        deployment=deployment,
        service=service,
        weight=weight,
        mirror=spec.shadow.percent if spec.shadow is not None and tick.shadowing() else 0,
        drain_first=s.phase in TERMINAL,
        restart=restart_wanted(tick),
        alias=alias_wanted(tick),
    )


def restart_wanted(tick: ReleaseTick) -> str | None:
    promotion, stable = tick.status.promotion, tick.obs.stable
    if tick.status.phase != "Promoting" or promotion is None or promotion.stage != "RestartStable":
        return None
    assert stable is not None
    return None if stable.template_annotations.get(RESTART_ANNOTATION) == promotion.restarted_at else promotion.restarted_at


def alias_wanted(tick: ReleaseTick) -> AliasTarget | None:
    s, promotion, spec = tick.status, tick.status.promotion, tick.spec
    if promotion is None or tick.obs.registry_error is not None:
        return None
    if s.phase == "Promoting" and promotion.stage == "MoveAlias" and promotion.alias_recorded:
        version = spec.candidate.model_version
        if tick.obs.alias_holder == version:
            return None
        tags = {
            "modelpilot.dev/promoted-at": promotion.started.isoformat(),
            "modelpilot.dev/release": f"{tick.ref.namespace}/{tick.ref.name}",
        }
        return AliasTarget(spec.model, spec.alias, version, tags)
    if restoring_alias(s) and tick.obs.alias_holder != promotion.previous_alias_version:
        return AliasTarget(spec.model, spec.alias, promotion.previous_alias_version)
    return None
