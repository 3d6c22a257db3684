"""RetrainPolicy decisions, tick by tick, without a cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from modelpilot.api import RETRAIN_POLICY, SpecError, load_spec
from modelpilot.api.retrain import ProductionState, RetrainPolicyStatus
from modelpilot.reconcile import PolicyRef, find_condition
from modelpilot.reconcile.retrain import (
    GATE_DETAIL_TAG,
    GATE_TAG,
    PRODUCTION_TAG_PREFIX,
    SERVED_TAG,
    CreateCanary,
    CreateJob,
    JobView,
    MonitorView,
    RegisterCandidate,
    RetrainObservations,
    RunView,
    TagVersion,
    VersionView,
    decide_retrain,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
OWNER = PolicyRef("ml", "fraud", "uid-1")
BASE = {
    "model": "fraud-detector",
    "monitorRef": {"name": "fraud"},
    "mlflow": {"trackingUri": "http://mlflow:5000"},
    "cooldown": "1h",
    "triggers": {"performance": {"metric": "accuracy", "threshold": 0.9, "sustainedEvaluations": 2}},
    "training": {
        "template": {"spec": {"containers": [{"name": "train", "image": "trainer:1", "env": [{"name": "KEEP", "value": "1"}]}]}},
        "retries": 1,
        "hyperparameters": {"strategy": "grid", "trials": 2, "space": {"learning_rate": [0.1, 0.3]}},
    },
    "gate": {
        "primaryMetric": "f1",
        "minImprovement": 0.01,
        "tolerance": 0.02,
        "metrics": ["accuracy", "f1"],
        "thresholds": {"accuracy": 0.8},
    },
    "deployment": {
        "auto": True,
        "canaryTemplate": {
            "target": {"deployment": "fraud"},
            "stepWeights": [20, 100],
            "analysis": {"prometheus": {"url": "http://prometheus:9090"}},
        },
    },
}


def spec(**changes):
    return load_spec(RETRAIN_POLICY, {**BASE, **changes})


def monitor(minute: int, accuracy: float, psi: dict[str, float] | None = None) -> MonitorView:
    return MonitorView(last_evaluation=T0 + timedelta(minutes=minute), quality={"accuracy": accuracy}, feature_psi=psi or {})


NOTHING_OBSERVED = RetrainObservations()


def tick(s, status, obs=NOTHING_OBSERVED, minute=0):
    return decide_retrain(s, status, obs, ref=OWNER, generation=1, now=T0 + timedelta(minutes=minute))


def test_performance_trigger_fires_once_per_excursion() -> None:
    s = spec()
    status = RetrainPolicyStatus()
    jobs = []
    for minute, accuracy in enumerate([0.95, 0.85, 0.85, 0.84, 0.83]):
        decision = tick(s, status, RetrainObservations(monitor=monitor(minute, accuracy), job=JobView("x", "Active")), minute)
        status = decision.status
        jobs += [a for a in decision.actions if isinstance(a, CreateJob)]
    assert status.runs == 1
    assert status.last_trigger.type == "performance"
    assert "accuracy 0.85 < 0.9 for 2 evaluations" in status.last_trigger.reason
    # The same evaluation seen twice does not count twice.
    again = tick(s, status, RetrainObservations(monitor=monitor(4, 0.8), job=JobView("x", "Active")), 6)
    assert again.status.triggers.performance_streak == status.triggers.performance_streak


def fired_at(s, qualities: list[dict[str, float]]) -> list[int]:
    """The evaluations (0-based) at which a run started, one quality reading per evaluation."""
    status, started = RetrainPolicyStatus(), []
    for minute, quality in enumerate(qualities):
        view = MonitorView(last_evaluation=T0 + timedelta(minutes=minute), quality=quality, feature_psi={})
        decision = tick(s, status, RetrainObservations(monitor=view), minute)
        if decision.status.runs > status.runs:
            started.append(minute)
        status = decision.status.model_copy(update={"phase": "Idle", "current_run": None})  # the run ended
    return started


@pytest.mark.parametrize(
    ("combine", "expected"),
    [
        # accuracy dips alone at 1; both at 3 and 4 (one excursion for "all"); f1 alone at 6.
        ("any", [1]),
        ("all", [3]),
    ],
)
def test_several_metrics_fire_on_any_or_only_on_all(combine: str, expected: list[int]) -> None:
    trigger = {"thresholds": {"accuracy": 0.9, "f1": 0.8}, "combine": combine}
    s = spec(triggers={"performance": trigger}, cooldown="1s")
    readings = [
        {"accuracy": 0.95, "f1": 0.85},
        {"accuracy": 0.85, "f1": 0.85},
        {"accuracy": 0.95, "f1": 0.85} if combine == "all" else {"accuracy": 0.85, "f1": 0.85},
        {"accuracy": 0.85, "f1": 0.7},
        {"accuracy": 0.8, "f1": 0.7},
    ]
    assert fired_at(s, readings) == expected


def test_a_metric_the_monitor_has_not_measured_neither_fires_nor_rearms() -> None:
    s = spec(triggers={"performance": {"thresholds": {"accuracy": 0.9, "f1": 0.8}, "combine": "all"}}, cooldown="1s")
    # f1 unknown: "all" cannot be known to hold, and nothing re-arms the trigger either.
    assert fired_at(s, [{"accuracy": 0.85}, {"accuracy": 0.85, "f1": 0.7}]) == [1]


def test_one_threshold_or_several_not_both() -> None:
    with pytest.raises(SpecError, match="either threshold"):
        spec(triggers={"performance": {"threshold": 0.9, "thresholds": {"f1": 0.8}}})
    with pytest.raises(SpecError, match="either threshold"):
        spec(triggers={"performance": {"metric": "f1"}})


def test_job_carries_the_contract_environment() -> None:
    decision = tick(spec(), RetrainPolicyStatus(), RetrainObservations(manual_annotation="please"))
    (create,) = [a for a in decision.actions if isinstance(a, CreateJob)]
    job = create.manifest
    assert job["metadata"]["name"] == "fraud-1-1"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KEEP"] == "1"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MODELPILOT_RUN_TAG"] == "modelpilot.dev/retrain-run=fraud-1-1"
    assert env["MODELPILOT_TRIGGER"] == "manual"
    assert json.loads(env["MODELPILOT_HYPERPARAMETERS"]) == {
        "strategy": "grid",
        "trials": 2,
        "space": {"learning_rate": [0.1, 0.3]},
    }
    assert json.loads(env["MODELPILOT_EARLY_STOPPING"]) == {"patience": 3, "min_delta": 0.0}
    assert datetime.fromisoformat(env["MODELPILOT_DATA_END"]) - datetime.fromisoformat(env["MODELPILOT_DATA_START"]) == timedelta(
        days=30
    )
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert find_condition(decision.status.conditions, "Training").status == "True"


def test_a_running_job_is_adopted_not_started_again() -> None:
    started = tick(spec(), RetrainPolicyStatus(), RetrainObservations(manual_annotation="go")).status
    # As after a restart: the status names the Job, which exists and runs.
    resumed = tick(spec(), started, RetrainObservations(manual_annotation="go", job=JobView("fraud-1-1", "Active")), 5)
    assert resumed.actions == []
    assert resumed.status.runs == 1 and resumed.status.current_run.job == "fraud-1-1"
    # A Job not visible yet (created just before the restart) is created again: 409 is fine.
    missing = tick(spec(), started, RetrainObservations(manual_annotation="go", job=JobView("fraud-1-1", "Missing")), 5)
    assert [a.manifest["metadata"]["name"] for a in missing.actions] == ["fraud-1-1"]


def test_failed_job_is_retried_then_recorded_and_cooldown_holds_triggers() -> None:
    status = tick(spec(), RetrainPolicyStatus(), RetrainObservations(manual_annotation="go")).status
    retry = tick(spec(), status, RetrainObservations(manual_annotation="go", job=JobView("fraud-1-1", "Failed", "OOMKilled")), 1)
    assert [a.manifest["metadata"]["name"] for a in retry.actions] == ["fraud-1-2"]
    failed = tick(
        spec(), retry.status, RetrainObservations(manual_annotation="go", job=JobView("fraud-1-2", "Failed", "OOMKilled")), 2
    )
    status = failed.status
    assert (status.phase, status.last_result) == ("Idle", "Failed")
    assert status.history[-1].outcome == "Failed" and "OOMKilled" in status.history[-1].message
    # Degradation during the cooldown is suppressed ...
    for minute in (3, 4):
        status = tick(spec(), status, RetrainObservations(manual_annotation="go", monitor=monitor(minute, 0.5)), minute).status
    assert status.runs == 1 and "cooldown" in find_condition(status.conditions, "Ready").message
    # ... and fires once the cooldown is over, as the trigger stayed armed.
    later = tick(spec(), status, RetrainObservations(manual_annotation="go", monitor=monitor(70, 0.5)), 70)
    assert later.status.runs == 2 and later.status.last_trigger.type == "performance"


def test_a_manual_request_bypasses_the_cooldown_and_fires_once() -> None:
    status = RetrainPolicyStatus(last_finished=T0, handled_manual_request="old|")
    first = tick(spec(triggers={"manual": {"request": "r2"}}), status, minute=1)
    assert first.status.runs == 1 and first.status.last_trigger.type == "manual"
    idle = first.status.model_copy(update={"phase": "Idle", "current_run": None})
    assert tick(spec(triggers={"manual": {"request": "r2"}}), idle, minute=2).status.runs == 1


def registering(s=None):
    s = s or spec()
    status = tick(s, RetrainPolicyStatus(), RetrainObservations(manual_annotation="go")).status
    return s, tick(s, status, RetrainObservations(manual_annotation="go", job=JobView("fraud-1-1", "Succeeded")), 1).status


def test_succeeded_run_is_registered_then_gated_and_handed_to_a_canary() -> None:
    s, status = registering()
    run = RunView("run-9", {"accuracy": 0.93, "f1": 0.9})
    obs = RetrainObservations(manual_annotation="go", job=JobView("fraud-1-1", "Succeeded"), run=run)
    register = tick(s, status, obs, 2)
    assert [type(a) for a in register.actions] == [RegisterCandidate]
    assert register.actions[0].tags["modelpilot.dev/policy"] == "ml/fraud"
    champion = VersionView("3", "run-3", {"accuracy": 0.92, "f1": 0.85})
    gated = tick(
        s,
        register.status,
        RetrainObservations(
            manual_annotation="go",
            job=JobView("fraud-1-1", "Succeeded"),
            run=run,
            candidate=VersionView("4", "run-9", {}),
            champion=champion,
        ),
        3,
    )
    status = gated.status
    assert status.phase == "Deploying" and status.candidate_version == "4" and status.champion_version == "3"
    rows = {c.metric: (c.champion, c.challenger, c.change, c.passed) for c in status.comparison}
    assert rows == {"f1": (0.85, 0.9, 0.05, True), "accuracy": (0.92, 0.93, 0.01, True)}
    (canary,) = [a for a in gated.actions if isinstance(a, CreateCanary)]
    assert canary.manifest["metadata"]["name"] == "fraud-v4"
    assert canary.manifest["spec"]["candidate"] == {"modelVersion": "4"}
    assert canary.manifest["spec"]["mlflow"] == {"trackingUri": "http://mlflow:5000"}
    promoted = tick(s, status, RetrainObservations(manual_annotation="go", canary_phase="Promoted"), 30)
    assert (promoted.status.phase, promoted.status.last_result) == ("Idle", "Promoted")
    assert promoted.status.history[-1].version == "4" and promoted.status.history[-1].primary_metric == 0.9


def test_a_candidate_worse_than_the_champion_is_not_deployed() -> None:
    s, status = registering()
    obs = RetrainObservations(
        manual_annotation="go",
        job=JobView("fraud-1-1", "Succeeded"),
        run=RunView("run-9", {"accuracy": 0.95, "f1": 0.855}),
        candidate=VersionView("4", "run-9", {}),
        champion=VersionView("3", "run-3", {"accuracy": 0.92, "f1": 0.85}),
    )
    decision = tick(s, status, obs, 3)
    # Nothing deployed; the registry learns the gate's verdict.
    assert decision.actions == [
        TagVersion("4", {GATE_TAG: "rejected", GATE_DETAIL_TAG: "f1 0.855 does not beat the champion's 0.85 by 0.01"})
    ]
    assert decision.status.last_result == "Rejected"
    assert "f1 0.855 does not beat the champion's 0.85 by 0.01" in decision.status.history[-1].message
    assert [e.reason for e in decision.events] == ["CandidateRejected"]


def test_manual_approval_waits_for_the_version() -> None:
    s, status = registering(spec(deployment={**BASE["deployment"], "auto": False}))
    obs = RetrainObservations(
        manual_annotation="go",
        job=JobView("fraud-1-1", "Succeeded"),
        run=RunView("r", {"accuracy": 0.95, "f1": 0.95}),
        candidate=VersionView("4", "r", {}),
    )
    waiting = tick(s, status, obs, 3).status
    assert waiting.phase == "AwaitingApproval"
    assert find_condition(waiting.conditions, "AwaitingApproval").status == "True"
    assert (
        tick(s, waiting, RetrainObservations(manual_annotation="go", approve_annotation="3"), 4).status.phase
        == "AwaitingApproval"
    )
    approved = tick(s, waiting, RetrainObservations(manual_annotation="go", approve_annotation="4"), 5)
    assert approved.status.phase == "Deploying" and isinstance(approved.actions[0], CreateCanary)


def test_schedule_fires_on_time_and_triggers_together_make_one_run() -> None:
    s = spec(triggers={**BASE["triggers"], "schedule": {"interval": "1d", "startTime": "2026-03-01T06:00:00Z"}})
    status = tick(s, RetrainPolicyStatus(), minute=0).status
    assert status.next_scheduled == datetime(2026, 3, 1, 6, tzinfo=UTC)
    early = tick(s, status, minute=359)
    assert early.status.runs == 0
    obs = RetrainObservations(monitor=monitor(360, 0.5))
    status = tick(s, early.status, RetrainObservations(monitor=monitor(359, 0.5)), 359).status
    both = tick(s, status, obs, 360).status
    assert both.runs == 1
    assert both.last_trigger.type == "performance" and "schedule:" in both.last_trigger.reason
    assert both.next_scheduled == datetime(2026, 3, 2, 6, tzinfo=UTC)


def test_drift_trigger_needs_enough_features() -> None:
    s = spec(triggers={"drift": {"psiThreshold": 0.25, "minFeatures": 2}})
    one = tick(s, RetrainPolicyStatus(), RetrainObservations(monitor=monitor(0, 0.95, {"a": 0.4, "b": 0.1})))
    assert one.status.runs == 0
    two = tick(s, one.status, RetrainObservations(monitor=monitor(1, 0.95, {"a": 0.4, "b": 0.3})), 1)
    assert two.status.runs == 1 and "a, b" in two.status.last_trigger.reason


def test_an_invalid_canary_template_is_reported_naming_the_field() -> None:
    bad = {**BASE["deployment"], "canaryTemplate": {**BASE["deployment"]["canaryTemplate"], "stepWeights": [50, 20]}}
    s, status = registering(spec(deployment=bad))
    obs = RetrainObservations(
        manual_annotation="go",
        job=JobView("fraud-1-1", "Succeeded"),
        run=RunView("r", {"accuracy": 0.95, "f1": 0.95}),
        candidate=VersionView("4", "r", {}),
    )
    decision = tick(s, status, obs, 3)
    assert decision.status.last_result == "Failed"
    assert "spec.deployment.canaryTemplate.stepWeights" in decision.status.history[-1].message


GUARDED = {"rollback": {"metric": "accuracy", "below": 0.9, "forEvaluations": 2}, "triggers": {}}


def in_production(version: str = "7", previous: str | None = "6") -> RetrainPolicyStatus:
    return RetrainPolicyStatus(production=ProductionState(version=version, previous=previous, since=T0))


def served(minute: int, accuracy: float, version: str = "7") -> RetrainObservations:
    view = MonitorView(last_evaluation=T0 + timedelta(minutes=minute), quality={"accuracy": accuracy}, version=version)
    return RetrainObservations(monitor=view)


def test_a_promoted_version_below_the_floor_goes_back_to_the_previous_champion_through_a_canary() -> None:
    s, status = spec(**GUARDED), in_production()
    for minute, accuracy in [(1, 0.95), (2, 0.85), (3, 0.93), (4, 0.85)]:  # below once, recovered, below once
        decision = tick(s, status, served(minute, accuracy), minute)
        assert not decision.actions
        status = decision.status
    decision = tick(s, status, served(5, 0.84), 5)  # the second in a row
    (create,) = decision.actions
    canary = create.manifest
    assert canary["metadata"]["name"] == "fraud-rollback-1"
    assert canary["spec"]["candidate"]["modelVersion"] == "6"
    assert canary["spec"]["stepWeights"] == [50, 100] and canary["spec"]["promotion"] == "auto"
    assert canary["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    production = decision.status.production
    assert production.rollback_canary == "fraud-rollback-1" and not production.armed
    assert "accuracy 0.84 < 0.9 for 2 evaluations" in production.rollback_reason
    assert [e.reason for e in decision.events] == ["RollbackStarted"]
    ready = find_condition(decision.status.conditions, "Ready")
    assert "rolling back to version 6" in ready.message

    # While the canary runs, nothing else starts; once it promoted, version 6 serves with nothing to flip back to.
    status = decision.status
    running = tick(s, status, RetrainObservations(monitor=served(6, 0.8).monitor, rollback_phase="Progressing"), 6)
    assert not running.actions
    done = tick(s, running.status, RetrainObservations(monitor=served(7, 0.8).monitor, rollback_phase="Promoted"), 7)
    assert done.status.production.version == "6" and done.status.production.previous is None
    assert [e.reason for e in done.events] == ["RolledBackInProduction"]
    # Version 6 below the floor too: there is no earlier version to go to, so no flip-flop.
    status = done.status
    for minute in (8, 9, 10):
        later = tick(s, status, served(minute, 0.5, version="6"), minute)
        assert not later.actions
        status = later.status


def test_evaluations_of_another_version_or_before_the_promotion_do_not_count() -> None:
    s, status = spec(**GUARDED), in_production()
    for minute, version in [(-5, "7"), (1, "6"), (2, "6"), (3, "6")]:
        decision = tick(s, status, served(minute, 0.5, version=version), max(minute, 0))
        assert not decision.actions
        status = decision.status
    assert status.production.streak == 0


def test_a_rollback_the_canary_refuses_waits_for_recovery_before_trying_again() -> None:
    s = spec(**GUARDED)
    status = in_production().model_copy(
        update={
            "production": in_production().production.model_copy(
                update={"rollback_canary": "fraud-rollback-1", "armed": False, "rollbacks": 1}
            )
        }
    )
    failed = tick(s, status, RetrainObservations(rollback_phase="RolledBack"), 1)
    assert failed.status.production.rollback_canary is None and failed.status.production.version == "7"
    assert [e.reason for e in failed.events] == ["RollbackFailed"]
    status = failed.status
    for minute in (2, 3, 4):  # still below: disarmed, no new rollback
        status = tick(s, status, served(minute, 0.5), minute).status
    assert status.production.rollback_canary is None
    status = tick(s, status, served(5, 0.95), 5).status  # recovered: armed again
    first = tick(s, status, served(6, 0.5), 6)
    again = tick(s, first.status, served(7, 0.5), 7)
    assert [a.manifest["metadata"]["name"] for a in again.actions] == ["fraud-rollback-2"]


def test_a_promotion_records_what_serves_and_what_it_replaced() -> None:
    status = RetrainPolicyStatus(phase="Deploying", candidate_version="8", champion_version="7", canary="fraud-v8")
    decision = tick(spec(**GUARDED), status, RetrainObservations(canary_phase="Promoted"), 1)
    production = decision.status.production
    assert (production.version, production.previous, production.since) == ("8", "7", T0 + timedelta(minutes=1))


def test_a_version_that_stops_serving_leaves_its_production_quality_in_the_registry() -> None:
    s, status = spec(**GUARDED), in_production()
    for minute, accuracy in [(1, 0.95), (2, 0.93), (3, 0.91)]:
        status = tick(s, status, served(minute, accuracy), minute).status
    assert status.production.evaluations == 3
    assert status.production.quality["accuracy"] == pytest.approx((0.95 + 0.93 + 0.91) / 3)
    replaced = status.model_copy(
        update={"phase": "Deploying", "candidate_version": "8", "champion_version": "7", "canary": "fraud-v8"}
    )
    decision = tick(s, replaced, RetrainObservations(canary_phase="Promoted"), 4)
    (tags,) = [a for a in decision.actions if isinstance(a, TagVersion)]
    assert tags.version == "7"
    assert tags.tags[f"{PRODUCTION_TAG_PREFIX}accuracy"] == "0.93"
    assert tags.tags[SERVED_TAG].endswith("(3 evaluations)")
    assert decision.status.production.version == "8" and decision.status.production.evaluations == 0


def test_rollback_needs_a_monitor() -> None:
    with pytest.raises(SpecError, match="monitorRef is required by rollback"):
        load_spec(RETRAIN_POLICY, {**{k: v for k, v in BASE.items() if k != "monitorRef"}, **GUARDED})


def test_a_requested_rollback_takes_the_same_path_once_per_request() -> None:
    s = spec(triggers={})  # no guard: the request alone
    first = tick(s, in_production(), RetrainObservations(rollback_annotation="2026-03-01T00:00:00"), 1)
    (create,) = first.actions
    assert create.manifest["spec"]["candidate"]["modelVersion"] == "6"
    assert "requested" in first.status.production.rollback_reason
    # Back on version 6, the same annotation starts nothing; a new one finds nothing to go back to.
    done = tick(s, first.status, RetrainObservations(rollback_annotation="2026-03-01T00:00:00", rollback_phase="Promoted"), 2)
    same = tick(s, done.status, RetrainObservations(rollback_annotation="2026-03-01T00:00:00"), 3)
    assert not same.actions and not same.events
    again = tick(s, same.status, RetrainObservations(rollback_annotation="2026-03-02T00:00:00"), 4)
    assert not again.actions and [e.reason for e in again.events] == ["RollbackFailed"]


def test_a_request_older_than_the_promotion_is_not_acted_on() -> None:
    status = RetrainPolicyStatus(phase="Deploying", candidate_version="8", champion_version="7", canary="fraud-v8")
    old = "2026-02-01T00:00:00"
    promoted = tick(spec(), status, RetrainObservations(canary_phase="Promoted", rollback_annotation=old), 1)
    later = tick(spec(), promoted.status, RetrainObservations(rollback_annotation=old), 2)
    assert not later.actions
