"""Any spec the CRDs' schemas accept (generated from the schemas themselves) is either refused
by the operator's own checks, naming a field, or decided on without raising, into a status the
API server takes; the objects it would create are built without raising too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpilot.api import CANARY_RELEASE, MODEL_MONITOR, RETRAIN_POLICY, Kind, SpecError, load_spec
from modelpilot.api.canary import CanaryReleaseStatus
from modelpilot.api.common import DURATION_PATTERN
from modelpilot.api.monitor import ModelMonitorStatus
from modelpilot.api.retrain import RetrainPolicyStatus
from modelpilot.reconcile import PolicyRef, ReleaseRef
from modelpilot.reconcile.canary import CanaryObservations, DeploymentView, decide_canary
from modelpilot.reconcile.monitor import MonitorObservations, decide_monitor
from modelpilot.reconcile.retrain import RetrainObservations, decide_retrain
from tests.support.kube import REPO
from tests.unit.reconcile.test_hostile_answers import api_server_takes

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ANY = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=6), inner, max_size=2),
    max_leaves=6,
)


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a CRD's structural schema accepts (its CEL rules aside: the operator's own checks
    judge those), for the keywords modelpilot's CRDs use."""
    strategy = _values(schema)
    return strategy | st.none() if schema.get("nullable") else strategy


def _values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return st.dictionaries(st.text(max_size=6), JSON, max_size=3)
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {name: values(child) for name, child in properties.items() if name in required}
        optional = {name: values(child) for name, child in properties.items() if name not in required}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            limit = schema.get("maxProperties", 3)
            return st.dictionaries(st.text(min_size=1, max_size=8), values(extra), max_size=min(limit, 3))
        # Every field, or any of them: whole specs are what users write, and reach furthest.
        return st.fixed_dictionaries({**fixed, **optional}) | st.fixed_dictionaries(fixed, optional=optional)
    if kind == "array":
        low, high = schema.get("minItems", 0), min(schema.get("maxItems", 4), 4)
        items = st.lists(values(schema["items"]), min_size=low, max_size=max(low, high))
        return items.map(lambda found: list(dict.fromkeys(found))) if schema.get("x-kubernetes-list-type") == "set" else items
    if kind == "string":
        if schema.get("pattern") == DURATION_PATTERN:
            short = st.builds("{}{}".format, st.integers(1, 30), st.sampled_from(["ms", "s", "m"]))
            long = st.builds("{}{}".format, st.integers(1, 90), st.sampled_from(["h", "d", "w"]))
            return short | long
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda text: schema.get("minLength", 0) <= len(text) <= schema.get("maxLength", 10**9)
            )
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 12), 12))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if kind == "integer":
            return st.integers(low, high)
        return st.floats(
            low,
            high,
            allow_nan=False,
            allow_infinity=False,
            exclude_min=bool(schema.get("exclusiveMinimum")),
            exclude_max=bool(schema.get("exclusiveMaximum")),
        )
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"a schema keyword set this generator does not know: {sorted(schema)}")


def spec_values(kind: Kind[Any, Any]) -> st.SearchStrategy[Any]:
    crd = yaml.safe_load((REPO / "crds" / f"{kind.plural}.modelpilot.dev.yaml").read_text())
    return values(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])


def admitted(kind: Kind[Any, Any], spec: dict[str, Any]) -> Any:
    """The operator's model of ``spec``, or None when its own checks refuse it by a field."""
    try:
        return load_spec(kind, spec)
    except SpecError as err:
        assert err.field.startswith("spec"), err
        return None


@ANY
@given(spec=spec_values(MODEL_MONITOR))
def test_any_monitor_spec_is_refused_by_a_field_or_decided(spec: dict[str, Any]) -> None:
    model = admitted(MODEL_MONITOR, spec)
    if model is not None:
        decision = decide_monitor(model, ModelMonitorStatus(), MonitorObservations(at=NOW, version=None), generation=1, now=NOW)
        api_server_takes(decision.status.to_body())


@ANY
@given(spec=spec_values(RETRAIN_POLICY))
def test_any_policy_spec_is_refused_by_a_field_or_decided(spec: dict[str, Any]) -> None:
    model = admitted(RETRAIN_POLICY, spec)
    if model is not None:
        # A manual request: the decision builds the training Job from whatever template it holds.
        observed = RetrainObservations(manual_annotation="now")
        decision = decide_retrain(model, RetrainPolicyStatus(), observed, ref=PolicyRef("ml", "p", "u"), generation=1, now=NOW)
        api_server_takes(decision.status.to_body())


@ANY
@given(spec=spec_values(CANARY_RELEASE))
def test_any_release_spec_is_refused_by_a_field_or_decided(spec: dict[str, Any]) -> None:
    model = admitted(CANARY_RELEASE, spec)
    if model is None:
        # The rules across fields (and the timeouts' bounds) refuse most generated releases:
        # judge the rest of the same spec once more with those fields made plain, so that many
        # reach a decision.
        analysis = {key: value for key, value in spec["analysis"].items() if key != "metrics"}
        analysis["prometheus"] = {"url": spec["analysis"]["prometheus"]["url"]}
        plain = {key: value for key, value in spec.items() if key not in ("stepWeight", "maxWeight", "webhooks")}
        steps = {"stepWeights": [50, 100]}
        model = admitted(
            CANARY_RELEASE,
            {**plain, **steps, "candidate": {"modelVersion": "2"}, "router": {"type": "replicas"}, "analysis": analysis},
        )
    if model is not None:
        stable = {
            "metadata": {"name": "m", "labels": {"modelpilot.dev/opt-in": "true"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "m"}},
                "template": {"metadata": {"labels": {"app": "m"}}, "spec": {"containers": [{"name": "s", "image": "s"}]}},
            },
            "status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2},
        }
        observed = CanaryObservations(stable=DeploymentView.from_body(stable), alias_holder="1", actual_weight=0.0)
        decision = decide_canary(model, CanaryReleaseStatus(), observed, ref=ReleaseRef("ml", "r", "u"), generation=1, now=NOW)
        api_server_takes(decision.status.to_body())
