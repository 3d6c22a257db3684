"""The status conventions Flux's kstatus reads (sigs.k8s.io/cli-utils/pkg/kstatus), checked on the
statuses the operator's own decisions write. kstatus, for a custom resource, decides in order:

1. ``metadata.deletionTimestamp`` set: Terminating;
2. ``status.observedGeneration`` present and not ``metadata.generation``: InProgress;
3. a condition ``Reconciling`` True: InProgress; ``Stalled`` True: Failed (the "abnormal-true" pair);
4. a ``Ready`` condition: True is Current, False and Unknown are InProgress;
5. none of these: Current.

modelpilot follows 2 and 4: every status says the generation it was decided for, at its top and on
each condition, and a metav1 ``Ready`` condition summarises it. It writes no Reconciling or
Stalled condition, so 3 never overrides Ready (docs/gitops.md: what Flux makes of each state).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from modelpilot.api import KINDS, Kind
from modelpilot.reconcile import admit, find_condition
from tests.unit.test_argocd_health import NOW, SAMPLES, healthy

DECIDED = [name for name, sample in SAMPLES.items() if sample.decided]
#: metav1.Condition's reason: CamelCase, what the API server's schema for it accepts.
REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
ABNORMAL_TRUE = {"Reconciling", "Stalled"}


def decided(name: str) -> tuple[int, dict[str, Any]]:
    """The generation of a decided sample and its status."""
    body = SAMPLES[name].build()
    return body["metadata"]["generation"], body["status"]


@pytest.mark.parametrize("name", DECIDED)
def test_status_says_the_generation_it_was_decided_for(name: str) -> None:
    generation, status = decided(name)
    assert status["observedGeneration"] == generation
    assert [c.get("observedGeneration") for c in status["conditions"]] == [generation] * len(status["conditions"])


@pytest.mark.parametrize("name", DECIDED)
def test_conditions_are_metav1_conditions_with_ready_summarising(name: str) -> None:
    _, status = decided(name)
    conditions = status["conditions"]
    types = [c["type"] for c in conditions]
    assert len(types) == len(set(types)), "one condition per type: kstatus and kubectl read the first"
    assert "Ready" in types and not ABNORMAL_TRUE & set(types)
    for condition in conditions:
        assert condition["status"] in ("True", "False", "Unknown"), condition
        assert REASON.match(condition["reason"]), condition
        assert isinstance(condition["message"], str)
        assert datetime.fromisoformat(condition["lastTransitionTime"]).tzinfo is not None, condition


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_a_verdict_kept_across_a_spec_change_keeps_the_generation_it_was_decided_for(kind: Kind[Any, Any]) -> None:
    spec, status = healthy(kind)
    kept = admit(kind, spec, list(status.conditions), generation=2, now=NOW)
    ready = find_condition(kept.conditions, "Ready")
    assert ready is not None and ready.status == "True"  # what the operator decided for generation 1
    assert ready.observed_generation == 1
