"""The operator's pod policy: what a training template may ask for, and which Deployments a
release may run candidates from."""

from __future__ import annotations

import pytest

from modelpilot.api.retrain import RetrainPolicyStatus
from modelpilot.reconcile import find_condition
from modelpilot.reconcile.pod_policy import OPT_IN_LABEL, PodPolicy, opted_in
from modelpilot.reconcile.retrain import CreateJob, RetrainObservations
from tests.support.canary_world import World, plan_of, release_spec
from tests.support.pod_cases import ALLOWED_ACCOUNTS, POD_CASES
from tests.unit.reconcile.test_retrain import BASE, spec, tick

POLICY = PodPolicy(training_service_accounts=frozenset(ALLOWED_ACCOUNTS))


@pytest.mark.parametrize(("name", "pod", "field"), POD_CASES, ids=[case[0] for case in POD_CASES])
def test_each_rule_names_the_field_that_breaks_it(name: str, pod: dict, field: str | None) -> None:
    found = POLICY.violations(pod, "spec.training.template.spec")
    if field is None:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].startswith(f"spec.training.template.spec.{field}: ")


def test_the_default_policy_allows_the_default_account_alone() -> None:
    assert PodPolicy().violations({"containers": []}, "spec") == []
    assert PodPolicy().violations({"serviceAccountName": "default"}, "spec") == []
    [refused] = PodPolicy().violations({"serviceAccountName": "trainer"}, "spec")
    assert "'trainer' is not one the operator allows for training (default)" in refused


def test_every_broken_rule_is_reported_at_once() -> None:
    pod = {"hostNetwork": True, "serviceAccountName": "x", "containers": [{"securityContext": {"privileged": True}}]}
    assert [v.split(":")[0] for v in POLICY.violations(pod, "p")] == [
        "p.serviceAccountName",
        "p.hostNetwork",
        "p.containers[0].securityContext.privileged",
    ]


@pytest.mark.parametrize("odd", [None, {}, {"containers": "nope", "volumes": [1, "x"], "securityContext": []}])
def test_odd_shapes_are_not_errors(odd) -> None:
    assert POLICY.violations(odd, "spec") == []


def test_a_refused_training_template_starts_nothing_and_says_which_field() -> None:
    template = {"spec": {"hostNetwork": True, "containers": [{"name": "train", "image": "trainer:1"}]}}
    s = spec(training={**BASE["training"], "template": template})
    requested = RetrainObservations(manual_annotation="now", pod_policy=POLICY)
    first = tick(s, RetrainPolicyStatus(), requested)
    assert not [a for a in first.actions if isinstance(a, CreateJob)]
    assert first.status.phase == "Idle" and first.status.runs == 0
    ready = find_condition(first.status.conditions, "Ready")
    assert (ready.status, ready.reason) == ("False", "PodPolicyViolation")
    assert "spec.training.template.spec.hostNetwork: host namespaces are not allowed" in ready.message
    assert [e.reason for e in first.events] == ["PodPolicyViolation"]
    # Said once, not on every tick.
    assert tick(s, first.status, requested, minute=1).events == []
    # Fixed, the pending manual request starts a run.
    fixed = tick(spec(), first.status, requested, minute=2)
    assert [a.manifest["metadata"]["name"] for a in fixed.actions if isinstance(a, CreateJob)] == ["fraud-1-1"]
    assert find_condition(fixed.status.conditions, "Ready").reason != "PodPolicyViolation"


def test_the_allowed_account_trains() -> None:
    template = {"spec": {"serviceAccountName": "trainer", "containers": [{"name": "train", "image": "trainer:1"}]}}
    s = spec(training={**BASE["training"], "template": template})
    decision = tick(s, RetrainPolicyStatus(), RetrainObservations(manual_annotation="now", pod_policy=POLICY))
    [job] = [a for a in decision.actions if isinstance(a, CreateJob)]
    assert job.manifest["spec"]["template"]["spec"]["serviceAccountName"] == "trainer"


def test_only_a_labelled_deployment_opts_in() -> None:
    assert opted_in({OPT_IN_LABEL: "true"})
    assert not opted_in({OPT_IN_LABEL: "yes"})
    assert not opted_in({})
    assert not opted_in(None)


def test_a_release_of_a_deployment_that_did_not_opt_in_changes_nothing() -> None:
    world = World(release_spec(), stable_labels={"app": "fraud"})
    for _ in range(3):
        world.tick()
    ready = find_condition(world.status.conditions, "Ready")
    assert (ready.status, ready.reason) == ("False", "StableNotOptedIn")
    assert f"Deployment fraud is not labelled {OPT_IN_LABEL}=true" in ready.message
    assert world.candidate is None and all(plan_of(r) is None for r in world.results)
    assert [reason for reason, _ in world.events()].count("StableNotOptedIn") == 1
    # Once its owners label it, the release goes ahead.
    world.stable_labels = {OPT_IN_LABEL: "true"}
    world.run_until("Progressing")
    assert world.candidate is not None
