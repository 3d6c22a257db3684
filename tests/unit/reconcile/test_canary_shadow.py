"""CanaryRelease mode shadow through the real tick: the candidate gets mirrored requests at
weight 0, is judged on errors, latency and its agreement with the stable's predictions, then goes
on to the canary steps, stops, or is rolled back when it disagrees."""

from __future__ import annotations

from typing import Any

import pytest

from modelpilot.api import SpecError
from modelpilot.reconcile.canary.routes import weighted_http_route, weighted_virtual_service
from tests.support.canary_world import Behaviour, World, plan_of, release_spec


def shadow_spec(**shadow: Any):
    return release_spec(
        router={"type": "gatewayAPI", "httpRoute": {"name": "fraud"}},
        mode="shadow",
        shadow={"percent": 100, "duration": "1m", "minAgreement": 0.95, **shadow},
    )


def test_a_candidate_that_agrees_shadows_at_weight_zero_then_walks_the_canary_steps() -> None:
    world = World(shadow_spec(), candidate_behaviour=Behaviour(fraud_share=0.11))
    world.run_until("Progressing")
    assert world.status.shadow.decision == "Running" and world.status.canary_weight == 0
    plan = plan_of(world.results[-1])
    assert plan.weight == 0 and plan.mirror == 100
    world.run_until("Promoted")
    shadow = world.status.shadow
    assert shadow.decision == "Passed" and shadow.agreement == pytest.approx(0.99)
    reasons = [reason for reason, _ in world.events()]
    assert reasons.index("ShadowStarted") < reasons.index("ShadowPassed") < reasons.index("StepStarted")
    # Once the steps began, nothing is mirrored any more.
    assert all(plan_of(r).mirror == 0 for r in world.results if r.status.current_step and plan_of(r))


def test_a_candidate_that_disagrees_is_rolled_back_from_the_shadow() -> None:
    world = World(shadow_spec(), candidate_behaviour=Behaviour(fraud_share=0.3))
    status = world.run_until("RolledBack")
    assert status.rollback.reason == "ShadowDisagreed" and status.rollback.step == 0
    assert status.shadow.decision == "Failed" and status.shadow.agreement == pytest.approx(0.8)
    assert "agrees with the stable on 80.0%" in status.rollback.message
    assert max(r.status.canary_weight or 0 for r in world.results) == 0  # it never served a user


def test_a_shadow_that_stops_completes_without_promoting() -> None:
    world = World(shadow_spec(then="stop"))
    status = world.run_until("Completed")
    assert status.history[-1].outcome == "Completed" and not world.alias_moves
    world.tick()
    assert plan_of(world.results[-1]).deployment["spec"]["replicas"] == 0 and world.mirror == 0


def test_a_shadow_needs_a_router_that_mirrors() -> None:
    with pytest.raises(SpecError, match="gatewayAPI or istio"):
        release_spec(mode="shadow", shadow={})
    with pytest.raises(SpecError, match="mode shadow needs shadow"):
        release_spec(router={"type": "gatewayAPI", "httpRoute": {"name": "fraud"}}, mode="shadow")


def test_routes_mirror_to_the_candidate_and_forget_the_mirror_at_zero() -> None:
    rules = [{"backendRefs": [{"name": "fraud", "port": 80}], "filters": [{"type": "RequestHeaderModifier"}]}]
    mirrored = weighted_http_route(rules, stable="fraud", candidate="c", weight=0, header=None, mirror=50)
    assert mirrored[0]["filters"][-1] == {
        "type": "RequestMirror",
        "requestMirror": {"backendRef": {"name": "c", "port": 80}, "percent": 50},
    }
    assert mirrored[0]["backendRefs"] == [{"name": "fraud", "port": 80, "weight": 100}]
    back = weighted_http_route(mirrored, stable="fraud", candidate="c", weight=0, header=None)
    assert back[0]["filters"] == [{"type": "RequestHeaderModifier"}]
    http = [{"route": [{"destination": {"host": "fraud", "port": {"number": 80}}}]}]
    istio = weighted_virtual_service(http, stable="fraud", candidate="c", weight=0, header=None, mirror=100)
    assert istio[0]["mirror"] == {"host": "c", "port": {"number": 80}} and istio[0]["mirrorPercentage"] == {"value": 100.0}
    assert "mirror" not in weighted_virtual_service(istio, stable="fraud", candidate="c", weight=0, header=None)[0]
