from modelpilot.reconcile import merge_patch
from tests.support.mergepatch import apply_merge_patch as apply


def test_patch_turns_old_into_new() -> None:
    old = {"a": 1, "summary": {"accuracy": 0.9, "p99": 0.2}, "features": [{"name": "x"}], "gone": {"k": 1}}
    new = {"a": 1, "summary": {"accuracy": 0.8}, "features": [{"name": "x"}, {"name": "y"}], "added": 0}
    patch = merge_patch(old, new)
    assert patch == {
        "summary": {"accuracy": 0.8, "p99": None},
        "features": [{"name": "x"}, {"name": "y"}],
        "gone": None,
        "added": 0,
    }
    assert apply(old, patch) == new


def test_nothing_changed_is_an_empty_patch() -> None:
    body = {"conditions": [{"type": "Ready"}], "summary": {"accuracy": 0.9}}
    assert merge_patch(body, dict(body)) == {}


def test_a_value_becoming_an_object_replaces_it() -> None:
    assert merge_patch({"x": 1}, {"x": {"y": 2}}) == {"x": {"y": 2}}
    assert merge_patch({"x": {"y": 2}}, {"x": 3}) == {"x": 3}
