"""CanaryRelease mode abTest through the real tick: a fixed split, checks read the sequential
test, and the release ends with the candidate promoted, the stable kept, or the time run out."""

from __future__ import annotations

from typing import Any

import pytest

from modelpilot.api import SpecError
from tests.support.canary_world import Behaviour, World, release_spec

AB_METRICS = [
    {"name": "error-rate", "builtin": "error-rate", "thresholdRange": {"max": 0.2}, "tolerance": 0.05},
    {"name": "accuracy", "builtin": "accuracy", "tolerance": 0.2},
]


def ab_spec(**ab: Any):
    return release_spec(
        stepWeights=None,
        mode="abTest",
        abTest={"metric": "accuracy", "split": 50, "duration": "5m", **ab},
        analysis={"prometheus": {"url": "http://prometheus:9090"}, "window": "30s", "metrics": AB_METRICS},
    )


def test_a_better_candidate_wins_and_is_promoted_at_its_split() -> None:
    world = World(ab_spec(), stable=Behaviour(accuracy=0.90), candidate_behaviour=Behaviour(accuracy=0.95), samples=(4000, 4000))
    world.run_until("Progressing")
    assert world.status.canary_weight == 50 and world.status.steps == 1
    status = world.run_until("Promoted")
    assert status.ab_test.decision == "CandidateWins"
    assert status.ab_test.p_value <= 0.05 and status.ab_test.difference == pytest.approx(0.05)
    assert any(reason == "ABTestDecided" and "candidate wins" in message for reason, message in world.events())


def test_a_worse_candidate_loses_and_the_stable_stays() -> None:
    world = World(ab_spec(), stable=Behaviour(accuracy=0.95), candidate_behaviour=Behaviour(accuracy=0.90), samples=(4000, 4000))
    status = world.run_until("RolledBack")
    assert status.rollback.reason == "ABTestLost" and status.ab_test.decision == "StableWins"
    assert "the stable wins the A/B test" in status.rollback.message


def test_no_difference_ends_inconclusive_after_the_duration_keeping_the_stable() -> None:
    world = World(ab_spec(duration="1m"), samples=(4000, 4000))
    status = world.run_until("RolledBack")
    assert status.rollback.reason == "ABTestInconclusive" and status.ab_test.decision == "Inconclusive"
    assert status.ab_test.looks >= 3 and status.ab_test.p_value > 0.05


def test_a_difference_on_too_few_samples_is_not_declared() -> None:
    world = World(
        ab_spec(minSamples=5000, duration="1m"),
        stable=Behaviour(accuracy=0.90),
        candidate_behaviour=Behaviour(accuracy=0.95),
        samples=(4000, 4000),
    )
    status = world.run_until("RolledBack")
    assert status.rollback.reason == "ABTestInconclusive" and status.ab_test.p_value == 1.0


def test_an_ab_test_takes_its_split_and_a_proportion_metric() -> None:
    with pytest.raises(SpecError, match="abTest takes neither"):
        release_spec(mode="abTest", abTest={"metric": "accuracy"})  # the default spec has stepWeights
    with pytest.raises(SpecError, match="error-rate or accuracy"):
        release_spec(stepWeights=None, mode="abTest", abTest={"metric": "latency"})
    with pytest.raises(SpecError, match="mode abTest needs abTest"):
        release_spec(stepWeights=None, mode="abTest")
