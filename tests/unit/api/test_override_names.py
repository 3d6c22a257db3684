from pathlib import Path

import pytest
import yaml

from modelpilot.api import MODEL_MONITOR, SpecError, load_spec
from modelpilot.api.monitor import QUERY_NAMES
from modelpilot.reconcile.promql import PRESETS
from modelpilot.reconcile.promql import QUERY_NAMES as RENDERED_QUERY_NAMES

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "modelmonitor.yaml"


def test_the_api_names_the_queries_the_presets_define() -> None:
    assert set(QUERY_NAMES) == set(RENDERED_QUERY_NAMES)
    for preset in PRESETS.values():
        assert set(preset.queries) <= set(QUERY_NAMES), preset.name


def _monitor(overrides: dict[str, str]) -> dict:
    spec = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d)["spec"]
    return {**spec, "metrics": {"overrides": overrides}}


def test_an_override_of_a_known_query_is_kept() -> None:
    query = "sum by (status) (increase(my_requests_total{$selector}[$window]))"
    assert load_spec(MODEL_MONITOR, _monitor({"requests": query})).metrics.overrides == {"requests": query}


def test_an_override_of_an_unknown_query_is_refused_naming_the_key() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(MODEL_MONITOR, _monitor({"errors": "sum(rate(x[5m]))"}))
    assert caught.value.field == "spec.metrics.overrides.errors"
    assert "latencyBuckets" in caught.value.message
