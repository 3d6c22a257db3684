from datetime import UTC, datetime, timedelta

from modelpilot.reconcile import changed_conditions, find_condition, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_transition_time_moves_only_when_status_flips() -> None:
    first = set_condition([], "Ready", "False", "Pending", "m1", now=T0, generation=1)
    same = set_condition(first, "Ready", "False", "Other", "m2", now=T0 + timedelta(hours=1), generation=2)
    flipped = set_condition(same, "Ready", "True", "Evaluated", "m3", now=T0 + timedelta(hours=2), generation=2)
    assert find_condition(same, "Ready").last_transition_time == T0
    assert find_condition(same, "Ready").message == "m2"
    assert find_condition(same, "Ready").observed_generation == 2
    assert find_condition(flipped, "Ready").last_transition_time == T0 + timedelta(hours=2)


def test_other_conditions_are_kept_in_order() -> None:
    conditions = set_condition([], "Ready", "True", "A", "", now=T0, generation=1)
    conditions = set_condition(conditions, "DataDrift", "False", "B", "", now=T0, generation=1)
    conditions = set_condition(conditions, "Ready", "False", "C", "", now=T0, generation=1)
    assert [c.type for c in conditions] == ["Ready", "DataDrift"]


def test_changed_conditions_are_status_or_reason_changes() -> None:
    before = set_condition([], "Ready", "True", "A", "x", now=T0, generation=1)
    message_only = set_condition(before, "Ready", "True", "A", "y", now=T0, generation=1)
    reason = set_condition(before, "Ready", "True", "B", "y", now=T0, generation=1)
    assert changed_conditions(before, message_only) == []
    assert [c.reason for c in changed_conditions(before, reason)] == ["B"]
    assert len(changed_conditions([], before)) == 1
