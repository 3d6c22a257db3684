from pathlib import Path

import pytest
import yaml

from modelpilot.api import CANARY_RELEASE, KINDS, MODEL_MONITOR, RETRAIN_POLICY, SpecError, load_spec, load_status

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _example(kind: str) -> dict:
    docs = [d for p in EXAMPLES.glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    return next(d for d in docs if d.get("kind") == kind)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_example_loads(kind) -> None:
    spec = load_spec(kind, _example(kind.kind)["spec"])
    assert isinstance(spec, kind.spec)


@pytest.mark.parametrize(
    ("kind", "change", "field", "words"),
    [
        (MODEL_MONITOR, {"interval": "soon"}, "spec.interval", "duration"),
        (MODEL_MONITOR, {"performance": {"latencyP99": "fast"}}, "spec.performance.latencyP99", "number"),
        (MODEL_MONITOR, {"drift": {"baseline": {"offset": "7d", "mlflowProfile": True}}}, "spec.drift.baseline", "exactly one"),
        (
            MODEL_MONITOR,
            {"model": {"name": "m", "version": {"mlflow": {"registeredModel": "m"}}}},
            "spec.mlflow",
            "mlflow.trackingUri",
        ),
        (MODEL_MONITOR, {"surprise": 1}, "spec.surprise", "Extra inputs"),
        (CANARY_RELEASE, {"stepWeights": [50, 25, 100]}, "spec.stepWeights", "ascending"),
        (CANARY_RELEASE, {"stepWeights": [10, 200]}, "spec.stepWeights[1]", "less than or equal to 100"),
        (CANARY_RELEASE, {"router": {"type": "istio"}}, "spec.router.virtualService", "virtualService"),
        (RETRAIN_POLICY, {"monitorRef": None}, "spec.monitorRef", "monitorRef"),
        (
            RETRAIN_POLICY,
            {"triggers": {"schedule": {"interval": "1d", "cron": "0 3 * * *"}}},
            "spec.triggers.schedule",
            "exactly one",
        ),
    ],
)
def test_invalid_specs_name_the_field(kind, change: dict, field: str, words: str) -> None:
    spec = {**_example(kind.kind)["spec"], **change}
    with pytest.raises(SpecError) as caught:
        load_spec(kind, spec)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_step_weight_expands_to_steps() -> None:
    spec = {**_example("CanaryRelease")["spec"], "stepWeights": None, "stepWeight": 20, "maxWeight": 50}
    spec.pop("stepWeights")
    assert load_spec(CANARY_RELEASE, spec).weights() == [20, 40, 50]
    spec.pop("maxWeight")
    assert load_spec(CANARY_RELEASE, spec).weights() == [20, 40, 60, 80, 100]


def test_status_from_other_writers_is_ignored_on_load() -> None:
    status = load_status(MODEL_MONITOR, {"observedGeneration": 3, "kopf": {"progress": {}}})
    assert status.observed_generation == 3
