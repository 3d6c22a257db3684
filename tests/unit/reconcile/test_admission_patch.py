"""The status patch admission writes: a valid new spec is not yet observed."""

from __future__ import annotations

from datetime import UTC, datetime

from modelpilot.api import CANARY_RELEASE, load_status
from modelpilot.api.canary import CanaryReleaseStatus
from modelpilot.reconcile import admission_patch
from modelpilot.reconcile.canary import is_due
from tests.support.canary_world import release_spec
from tests.support.mergepatch import apply_merge_patch

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_settled_release_whose_spec_changes_is_ticked_again() -> None:
    settled = CanaryReleaseStatus(phase="Promoted", settled=True, observed_generation=1)
    assert not is_due(settled, 1, NOW)
    result, patch = admission_patch(CANARY_RELEASE, release_spec().to_body(), settled.to_body(), generation=2, now=NOW)
    assert result.error is None
    admitted = load_status(CANARY_RELEASE, apply_merge_patch(settled.to_body(), patch))
    assert admitted.observed_generation == 1
    assert is_due(admitted, 2, NOW)


def test_an_invalid_spec_is_observed_with_its_verdict() -> None:
    body = {**release_spec().to_body(), "stepWeights": [50, 10]}
    result, patch = admission_patch(CANARY_RELEASE, body, {}, generation=3, now=NOW)
    assert result.error is not None and result.error.field == "spec.stepWeights"
    assert patch["observedGeneration"] == 3
    assert patch["conditions"][0]["reason"] == "InvalidSpec"
