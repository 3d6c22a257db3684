"""The CanaryRelease state machine, driven tick by tick through a simulated world: steps,
verdicts and their limits, promotion stages, rollback, gates, and ticks killed half-way."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from modelpilot.api.canary import CanaryReleaseStatus
from modelpilot.reconcile import find_condition
from modelpilot.reconcile.canary import (
    RESTART_ANNOTATION,
    CanaryObservations,
    DeploymentView,
    decide_canary,
    is_due,
    observation_needs,
)
from tests.support.canary_world import REF, START, Behaviour, World, notifications_of, plan_of, release_spec


def condition(world: World, type_: str) -> tuple[str, str]:
    found = find_condition(world.status.conditions, type_)
    assert found is not None, type_
    return found.status, found.reason


def test_healthy_candidate_walks_every_step_and_is_promoted() -> None:
    world = World(release_spec())
    steps_seen = []
    for _ in range(200):
        world.tick()
        if world.status.phase == "Progressing" and world.status.current_step not in steps_seen:
            steps_seen.append(world.status.current_step)
        if world.status.phase == "Promoted":
            break
    status = world.status
    assert status.phase == "Promoted" and steps_seen == [1, 2, 3]
    assert status.stable_version == "4" and status.canary_weight == 0
    assert status.promotion is not None and status.promotion.previous_alias_version == "3"
    assert world.alias_holder == "4" and set(world.alias_moves) == {"4"}
    assert len(set(world.restarts_written)) == 1 and world.stable_annotation == status.promotion.restarted_at
    assert world.candidate is not None and world.candidate["spec"]["replicas"] == 0  # leftover capacity scaled down
    assert [h.outcome for h in status.history] == ["Promoted"]
    assert condition(world, "Ready") == ("True", "Promoted") and condition(world, "Promoted") == ("True", "Promoted")
    assert condition(world, "Progressing") == ("False", "Promoted")
    assert status.counters.failed == 0 and status.counters.passed == 3
    reasons = [r for r, _ in world.events()]
    assert reasons == [
        "ReleaseStarted",
        "StepStarted",
        "StepStarted",
        "StepStarted",
        "AnalysisPassed",
        "Promoting",
        "AliasMoved",
        "Promoted",
    ]


def test_replica_router_weights_by_pods_and_reports_the_ratio_honestly() -> None:
    world = World(release_spec(router={"type": "replicas", "maxCandidateReplicas": 3}), stable_replicas=4)
    replicas, actual = [], []
    for _ in range(200):
        world.tick()
        if world.status.phase == "Progressing" and world.status.step_started is not None:
            assert world.candidate is not None
            pair = (world.status.current_step, world.candidate["spec"]["replicas"])
            if pair not in replicas:
                replicas.append(pair)
                actual.append(world.status.actual_weight)
        if world.status.phase == "Promoting":
            break
    # 20% of 4 stable pods: 1 candidate; 50%: 4 capped at 3; 100%: the cap.
    assert replicas == [(1, 1), (2, 3), (3, 3)]
    assert actual == [20.0, pytest.approx(42.9), pytest.approx(42.9)]


@pytest.mark.parametrize(
    ("candidate", "metric", "field"),
    [
        (Behaviour(error_rate=0.2), "error-rate", "value"),
        (Behaviour(latency=0.1), "latency", "effect"),
        (Behaviour(accuracy=0.7), "accuracy", "value"),
    ],
)
def test_worse_candidate_is_rolled_back_at_the_first_step_with_the_reason(candidate: Behaviour, metric: str, field: str) -> None:
    world = World(release_spec(), candidate_behaviour=candidate)
    status = world.run_until("RolledBack")
    reason = status.rollback
    assert reason is not None and reason.reason == "MetricFailed" and reason.metric == metric
    assert reason.step == 1 and reason.weight == 20 and reason.threshold is not None
    assert reason.message.startswith(f"{metric} failed at step 1/3 (20% traffic)")
    record = next(r for r in status.last_analysis if r.metric == metric)
    assert record.verdict == "Fail" and getattr(record, field) is not None
    assert condition(world, "Ready") == ("False", "RolledBack") and condition(world, "RolledBack") == ("True", "MetricFailed")
    plan = plan_of(world.results[-1])
    assert plan is not None and plan.drain_first and plan.weight == 0 and plan.deployment["spec"]["replicas"] == 0
    assert world.alias_holder == "3" and not world.alias_moves  # the alias never moved
    assert ("RolledBack", reason.message) in world.events()


def test_slower_distribution_fails_while_p99_stays_under_the_threshold() -> None:
    world = World(release_spec(), candidate_behaviour=Behaviour(latency=0.045))
    status = world.run_until("RolledBack")
    latency = next(r for r in status.last_analysis if r.metric == "latency")
    assert latency.value is not None and latency.value < 0.5  # p99 within the limit
    assert latency.verdict == "Fail" and latency.effect is not None and latency.effect > 0.1


def test_prometheus_outage_holds_the_release_and_it_continues_afterwards() -> None:
    world = World(release_spec())
    while not (world.status.current_step == 2 and world.status.step_started):
        world.tick()
    world.prometheus_up = False
    held = []
    for _ in range(30):
        world.tick()
        held.append((world.status.phase, world.status.current_step, world.weight))
    assert set(held) == {("Progressing", 2, 50)}  # neither promoted nor rolled back, weights kept
    assert world.status.counters.query_error >= 2 and world.status.last_check == "QueryError"
    assert condition(world, "Ready") == ("Unknown", "AnalysisHeld")
    assert [r for r, _ in world.events()].count("AnalysisHeld") == 1  # on the transition only
    world.prometheus_up = True
    world.run_until("Promoted")
    assert "AnalysisResumed" in [r for r, _ in world.events()]


def test_consecutive_query_errors_roll_back_when_the_policy_says_so() -> None:
    spec = release_spec()
    analysis = spec.analysis.model_copy(update={"consecutive_query_error_limit": 2})
    world = World(spec.model_copy(update={"analysis": analysis}), prometheus_up=False)
    status = world.run_until("RolledBack")
    assert status.rollback is not None and status.rollback.reason == "QueryErrors"
    assert status.counters.consecutive_query_error == 2


@pytest.mark.parametrize(("policy", "outcome"), [("fail", "RolledBack"), ("hold", "Progressing"), ("ignore", "Promoted")])
def test_no_data_follows_its_policy(policy: str, outcome: str) -> None:
    spec = release_spec()
    analysis = spec.analysis.model_copy(update={"no_data": policy})
    world = World(spec.model_copy(update={"analysis": analysis}), candidate_behaviour=Behaviour())
    original = world.answers

    def without_feedback(needs):  # no labels arrive for the candidate
        answers = original(needs)
        if "accuracy" in answers:
            answers["accuracy"] = type(answers["accuracy"])(
                type(answers["accuracy"].candidate)(answers["accuracy"].candidate.query), answers["accuracy"].stable
            )
        return answers

    world.answers = without_feedback  # type: ignore[method-assign]  # the world answers as told, this once without labels
    for _ in range(80):
        world.tick()
    assert world.status.phase == outcome
    if policy == "fail":
        assert world.status.rollback is not None and world.status.rollback.reason == "NoData"
    if policy == "hold":
        assert world.status.counters.no_data > 0 and condition(world, "Progressing")[0] == "Unknown"


def test_inconclusive_steps_decide_on_thresholds_after_the_limit() -> None:
    # 8 candidate requests a check: never enough for a test against stable (min 50 samples),
    # enough for nothing at all: the thresholds need them too. With 60 they pass thresholds.
    world = World(release_spec(), samples=(800.0, 60.0))
    analysis = world.spec.analysis.model_copy(update={"min_samples": 50, "inconclusive_limit": 2})
    world.spec = world.spec.model_copy(update={"analysis": analysis})
    world.candidate_behaviour = Behaviour(accuracy=0.93)
    world.run_until("Promoted")
    assert world.status.counters.inconclusive >= 2
    assert any("decided on thresholds" in r.message for r in world.status.last_analysis)


def test_manual_promotion_waits_for_approval() -> None:
    world = World(release_spec(promotion="manual"))
    world.run_until("AwaitingPromotion")
    for _ in range(20):
        world.tick()
    assert world.status.phase == "AwaitingPromotion" and world.status.canary_weight == 100
    assert condition(world, "Paused") == ("True", "AwaitingApproval")
    world.spec = world.spec.model_copy(update={"promote": True})
    world.run_until("Promoted")
    assert condition(world, "Paused") == ("False", "NotPaused")


@pytest.mark.parametrize("step", [1, 2, 3])
def test_abort_at_any_step_sends_traffic_back_at_once(step: int) -> None:
    world = World(release_spec())
    while world.status.current_step != step:
        world.tick()
    world.spec = world.spec.model_copy(update={"abort": True})
    result = world.tick()
    assert result.status.phase == "RolledBack" and result.status.rollback is not None
    assert result.status.rollback.reason == "Aborted" and result.status.rollback.step == step
    plan = plan_of(result)
    assert plan is not None and plan.weight == 0 and plan.drain_first


def test_abort_after_the_alias_moved_restores_it_but_not_once_the_stable_restarts() -> None:
    world = World(release_spec())
    while not (world.status.promotion and world.status.promotion.alias_moved):
        world.tick()
    world.spec = world.spec.model_copy(update={"abort": True})
    assert world.status.promotion.stage == "RestartStable"
    world.tick()
    assert world.status.phase == "Promoting"  # committed: the stable already loads the new champion

    world = World(release_spec())
    while not (world.status.promotion and world.status.promotion.alias_recorded):
        world.tick()
    assert world.alias_holder == "4"  # moved by the plan of the tick that recorded the previous holder
    world.spec = world.spec.model_copy(update={"abort": True})
    world.tick()
    assert world.status.phase == "RolledBack"
    for _ in range(3):
        world.tick()
    assert world.alias_holder == "3" and world.status.promotion is not None and not world.status.promotion.alias_recorded
    assert "AliasRestored" in [r for r, _ in world.events()]


def test_gate_webhooks_block_until_they_answer_2xx() -> None:
    hooks = [
        {"type": "confirm-rollout", "urlSecret": {"name": "hooks", "key": "confirm"}},
        {"type": "pre-rollout", "urlSecret": {"name": "hooks", "key": "pre"}},
        {"type": "event", "urlSecret": {"name": "hooks", "key": "slack"}},
        {"type": "post-rollout", "urlSecret": {"name": "hooks", "key": "post"}},
    ]
    world = World(release_spec(webhooks=hooks), hook_ok={"confirm-rollout": False})
    for _ in range(12):
        world.tick()
    assert world.status.phase == "Initializing" and world.candidate["spec"]["replicas"] == 0
    assert condition(world, "Paused") == ("True", "WaitingForHook")
    # Asked once per interval (10 s), not every 2 s tick.
    assert 2 <= world.hooks_called.count("confirm-rollout") <= 4
    world.hook_ok["confirm-rollout"] = True
    world.run_until("Promoted")
    for _ in range(3):
        world.tick()
    assert world.hooks_called.index("confirm-rollout") < world.hooks_called.index("pre-rollout")
    assert world.status.hooks_done == ["confirm-rollout", "pre-rollout", "post-rollout"]
    notes = [n for r in world.results for n in notifications_of(r)]
    assert notes and all(n["text"].startswith("ml/fraud-v4: ") for n in notes)
    assert [n["reason"] for n in notes][-1] == "Promoted"


def test_a_changed_candidate_starts_a_new_release_and_a_same_version_one_is_refused() -> None:
    world = World(release_spec())
    world.run_until("Promoted")
    world.spec = release_spec(candidate={"modelVersion": "5"})
    world.tick()
    assert world.status.phase == "Initializing" and world.status.stable_version == "4"
    assert world.status.candidate_version == "5" and len(world.status.history) == 1
    world.run_until("Promoted")
    assert len(world.status.history) == 2 and world.alias_holder == "5"

    same = World(release_spec(), alias_holder="4")
    same.tick()
    assert condition(same, "Ready") == ("False", "SameVersion") and plan_of(same.results[-1]) is None


def test_image_only_candidate_gets_a_version_label_of_its_own() -> None:
    world = World(release_spec(candidate={"image": "fraud:2", "env": [{"name": "LATENCY_MS", "value": "5"}]}))
    world.run_until("Promoted")
    assert world.status.candidate_version.startswith("image-")
    assert not world.alias_moves  # no registry version to promote
    assert "make them permanent" in world.status.history[-1].message


# --- restart safety ---------------------------------------------------------------------------


def _healthy_ticks() -> int:
    world = World(release_spec())
    world.run_until("Promoted")
    return len(world.results)


@pytest.mark.parametrize("killed", ["before-write", "after-write"])
def test_an_operator_killed_at_any_tick_resumes_and_promotes_once(killed: str) -> None:
    for k in range(_healthy_ticks()):
        world = World(release_spec())
        for i in range(300):
            if world.status.phase == "Promoted":
                break
            # A killed operator loses the tick; the new one starts a few seconds later.
            world.tick(
                write=killed != "before-write" or i != k, apply=killed != "after-write" or i != k, seconds=2 if i != k else 7
            )
        world.tick()  # the restarted operator's next tick makes the world match the status
        status = world.status
        assert status.phase == "Promoted", (k, status.phase)
        assert [h.outcome for h in status.history] == ["Promoted"], k
        assert status.promotion is not None and status.promotion.previous_alias_version == "3", k
        assert set(world.alias_moves) == {"4"} and len(set(world.restarts_written)) == 1, k
        assert world.stable_generation == 2, k  # restarted exactly once
        assert world.candidate is not None and world.candidate["spec"]["replicas"] == 0, k


def test_a_replayed_tick_decides_the_same_and_its_plan_applied_twice_changes_nothing() -> None:
    world = World(release_spec())
    while world.status.phase != "Promoted":
        needs = observation_needs(world.spec, world.status, ref=REF, now=world.now)
        obs = world.observe(needs)
        first = decide_canary(world.spec, world.status, obs, ref=REF, generation=1, now=world.now)
        again = decide_canary(world.spec, world.status, obs, ref=REF, generation=1, now=world.now)
        assert again == first
        world.status = first.status
        world.apply(plan_of(first))
        once = (
            copy.deepcopy(world.candidate),
            world.weight,
            world.stable_annotation,
            world.stable_generation,
            world.alias_holder,
        )
        world.apply(plan_of(first))
        assert (world.candidate, world.weight, world.stable_annotation, world.stable_generation, world.alias_holder) == once
        world.tick()


def test_weights_follow_status_after_a_kill_between_the_write_and_the_apply() -> None:
    world = World(release_spec(router={"type": "gatewayAPI", "httpRoute": {"name": "fraud"}}))
    while world.status.current_step != 2:
        world.tick()
    world.tick()
    assert world.weight == 50
    world.spec = world.spec.model_copy(update={"abort": True})
    world.tick(apply=False)  # RolledBack written, weights not yet moved
    assert world.status.phase == "RolledBack" and world.weight == 50
    world.tick()
    assert world.weight == 0 and world.candidate is not None and world.candidate["spec"]["replicas"] == 0


def test_stable_restarts_once_while_warm_candidate_pods_carry_the_traffic() -> None:
    world = World(release_spec(router={"type": "gatewayAPI", "httpRoute": {"name": "fraud"}}), restart_ticks=5)
    restarting = []
    while world.status.phase != "Promoted":
        world.tick()
        if world.stable_observed < world.stable_generation:  # the stable pods are restarting
            assert world.candidate is not None
            restarting.append((world.weight, world.candidate["spec"]["replicas"]))
    assert restarting and set(restarting) == {(100, world.stable_replicas)}
    assert world.stable_observed == world.stable_generation == 2  # promoted only once the rollout was complete
    annotations = world.stable_body()["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {RESTART_ANNOTATION: world.status.promotion.restarted_at}
    assert world.restarts_written == [world.status.promotion.restarted_at]
    world.tick()
    assert world.weight == 0 and world.candidate["spec"]["replicas"] == 0  # then back to stable, then scaled down


def test_a_missing_stable_or_alias_holds_everything_and_says_so_once() -> None:
    spec, status = release_spec(), CanaryReleaseStatus()
    missing = CanaryObservations(problem=("StableNotFound", "stable Deployment ml/fraud not found"))
    first = decide_canary(spec, status, missing, ref=REF, generation=1, now=START)
    assert plan_of(first) is None and first.status.phase == "Initializing"
    ready = find_condition(first.status.conditions, "Ready")
    assert (ready.status, ready.reason, ready.message) == ("False", "StableNotFound", "stable Deployment ml/fraud not found")
    again = decide_canary(spec, first.status, missing, ref=REF, generation=1, now=START + timedelta(seconds=2))
    assert [e.reason for e in first.events] == ["ReleaseStarted", "StableNotFound"] and again.events == []

    no_alias = World(spec, alias_holder=None)
    no_alias.tick()
    assert condition(no_alias, "Ready") == ("False", "NoStableVersion") and plan_of(no_alias.results[-1]) is None


@pytest.mark.parametrize("outcome", ["Promoted", "RolledBack"])
def test_a_finished_release_settles_and_stays_quiet(outcome: str) -> None:
    failing = Behaviour(error_rate=0.3) if outcome == "RolledBack" else Behaviour()
    world = World(release_spec(), candidate_behaviour=failing)
    world.run_until(outcome)
    assert not world.status.settled  # the candidate still has pods: the plan must scale it down first
    for _ in range(10):
        if world.status.settled:
            break
        world.tick()
    assert world.status.settled and world.candidate is not None and world.candidate["spec"]["replicas"] == 0
    decided = len(world.results)
    for _ in range(5):
        world.tick()
    assert len(world.results) == decided  # no tick decided anything, nor applied anything
    assert is_due(world.status, 2, START) and not is_due(world.status, 1, START)  # a changed spec ticks again


@pytest.mark.parametrize("owner", [None, "uid-of-someone-else"])
def test_an_object_under_the_candidates_name_that_is_not_ours_is_never_touched(owner: str | None) -> None:
    world = World(release_spec(router={"type": "gatewayAPI", "httpRoute": {"name": "fraud"}}))
    references = [] if owner is None else [{"kind": "Deployment", "name": "x", "uid": owner, "controller": True}]
    world.candidate = {
        "metadata": {"name": "fraud-v4-candidate", "ownerReferences": references},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "theirs"}}},
    }
    before = copy.deepcopy(world.candidate)
    for _ in range(5):
        world.tick()
    assert condition(world, "Ready") == ("False", "CandidateNameTaken")
    assert "Deployment fraud-v4-candidate" in next(c.message for c in world.status.conditions if c.type == "Ready")
    assert world.candidate == before and all(plan_of(r) is None for r in world.results)
    # The same holds for a Service of that name, behind a mesh router.
    spec = world.spec
    theirs = CanaryObservations(
        stable=DeploymentView.from_body(world.stable_body()), candidate_service=(True, owner), actual_weight=0.0
    )
    decision = decide_canary(spec, CanaryReleaseStatus(), theirs, ref=REF, generation=1, now=START)
    assert plan_of(decision) is None and "Service fraud-v4-candidate" in decision.status.conditions[0].message
