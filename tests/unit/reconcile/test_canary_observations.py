"""What a CanaryRelease reads of a Deployment, and how webhook answers combine per hook type."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from modelpilot.reconcile.canary import DeploymentView, HookAnswer, HookCall, answers_by_type


def deployment(replicas: int, generation: int, observed: int, status_replicas: int, updated: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud", "generation": generation, "labels": {"app": "fraud"}},
        "spec": {"replicas": replicas, "template": {"metadata": {"annotations": {"a": "1"}}}},
        "status": {
            "observedGeneration": observed,
            "replicas": status_replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
        },
    }


@pytest.mark.parametrize(
    ("counts", "rolled_out"),
    [
        ((3, 2, 2, 3, 3, 3), True),
        ((3, 2, 1, 3, 3, 3), False),  # the controller has not seen the new template yet
        ((3, 2, 2, 4, 3, 3), False),  # an old pod still runs beside the new ones
        ((3, 2, 2, 3, 2, 3), False),  # not every replica runs the new template
        ((3, 2, 2, 3, 3, 2), False),  # one new pod is not ready
    ],
)
def test_rolled_out_as_kubectl_rollout_status_judges(counts: tuple[int, ...], rolled_out: bool) -> None:
    assert DeploymentView.from_body(deployment(*counts)).rolled_out is rolled_out


def test_a_deployment_without_status_reads_as_nothing_ready() -> None:
    view = DeploymentView.from_body({"metadata": {"name": "x"}, "spec": {}})
    assert (view.replicas, view.ready, view.rolled_out) == (1, 0, False)
    full = DeploymentView.from_body(deployment(3, 2, 2, 3, 3, 3))
    assert full.labels == {"app": "fraud"} and full.template_annotations == {"a": "1"}


def call(type_: str) -> HookCall:
    return HookCall(type_, "hooks", "url", timedelta(seconds=5), {})


def test_a_hook_type_says_yes_only_when_every_hook_of_it_does() -> None:
    hooks = [call("pre-rollout"), call("pre-rollout"), call("rollback")]
    answers = [HookAnswer(True, "answered 200"), HookAnswer(False, "answered 503: busy"), HookAnswer(True, "answered 204")]
    combined = answers_by_type(hooks, answers)
    assert combined == {
        "pre-rollout": HookAnswer(False, "answered 503: busy"),
        "rollback": HookAnswer(True, "answered 204"),
    }


def test_answers_must_match_the_hooks_called() -> None:
    with pytest.raises(ValueError):
        answers_by_type([call("pre-rollout")], [])
