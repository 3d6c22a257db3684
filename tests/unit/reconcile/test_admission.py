from datetime import UTC, datetime

from modelpilot.api import MODEL_MONITOR
from modelpilot.reconcile import admit, find_condition, set_condition

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = {"model": {"name": "m"}, "prometheus": {"url": "http://prometheus:9090"}}


def test_valid_spec_is_pending_until_evaluated() -> None:
    result = admit(MODEL_MONITOR, SPEC, [], generation=1, now=NOW)
    ready = find_condition(result.conditions, "Ready")
    assert result.spec is not None and result.error is None
    assert (ready.status, ready.reason, ready.observed_generation) == ("Unknown", "Pending", 1)


def test_invalid_spec_names_the_field() -> None:
    result = admit(MODEL_MONITOR, {**SPEC, "interval": "often"}, [], generation=4, now=NOW)
    ready = find_condition(result.conditions, "Ready")
    assert result.spec is None
    assert (ready.status, ready.reason, ready.observed_generation) == ("False", "InvalidSpec", 4)
    assert ready.message.startswith("spec.interval:")


def test_an_evaluated_verdict_survives_readmission_at_the_generation_it_was_decided_for() -> None:
    evaluated = set_condition([], "Ready", "True", "Evaluated", "all good", now=NOW, generation=1)
    result = admit(MODEL_MONITOR, SPEC, evaluated, generation=2, now=NOW)
    ready = find_condition(result.conditions, "Ready")
    # Generation 2 is not evaluated yet: saying so lets kstatus, Argo CD and the tick's own
    # due check see a spec that is still to be handled.
    assert (ready.status, ready.reason, ready.observed_generation) == ("True", "Evaluated", 1)


def test_fixing_a_spec_clears_invalidspec() -> None:
    broken = admit(MODEL_MONITOR, {**SPEC, "interval": "often"}, [], generation=1, now=NOW).conditions
    fixed = admit(MODEL_MONITOR, SPEC, broken, generation=2, now=NOW)
    assert find_condition(fixed.conditions, "Ready").reason == "Pending"
