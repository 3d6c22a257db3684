"""The checked-in CRDs are what the models generate, and are structural schemas."""

from pathlib import Path

import pytest
import yaml

from modelpilot.api import KINDS, build_crd, render_crds
from modelpilot.api.monitor import QUERY_NAMES

CRDS = Path(__file__).resolve().parents[3] / "crds"


def test_checked_in_crds_match_the_models() -> None:
    rendered = render_crds()
    assert sorted(p.name for p in CRDS.glob("*.yaml")) == sorted(rendered)
    for name, text in rendered.items():
        assert (CRDS / name).read_text() == text, f"crds/{name} is stale: run `modelpilot crds`"


def _walk(node: dict, path: str):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural(kind) -> None:
    schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema, kind.kind):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "const", "title", "$defs"} & set(node), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path


def test_rules_spanning_fields_are_cel() -> None:
    canary = build_crd(KINDS[2])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in canary["x-kubernetes-validations"]]
    assert any("isSorted" in r for r in rules)
    weights = canary["properties"]["stepWeights"]
    assert weights["items"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert weights["x-kubernetes-list-type"] == "set"


def test_optional_fields_are_nullable_and_defaults_survive() -> None:
    monitor = build_crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    performance = monitor["properties"]["performance"]["properties"]
    assert performance["latencyP99"]["nullable"] is True
    assert performance["window"]["default"] == "5m"
    assert monitor["properties"]["metrics"]["properties"]["preset"]["enum"] == ["generic", "tfserving", "triton", "kserve"]
    assert yaml.safe_load(render_crds()["modelmonitors.modelpilot.dev.yaml"])["kind"] == "CustomResourceDefinition"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_is_documented(kind) -> None:
    schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    top = {name: child for name, child in schema["properties"].items() if name not in {"apiVersion", "kind", "metadata"}}
    undocumented = [
        path
        for name, child in top.items()
        for path, node in _walk(child, name)
        if not path.endswith(("[]", "{}")) and not node.get("description")
    ]
    assert not undocumented, f"{len(undocumented)} fields without a description: {undocumented}"


def test_allowed_map_keys_become_a_cel_rule() -> None:
    monitor = build_crd(KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    overrides = monitor["properties"]["metrics"]["properties"]["overrides"]
    [rule] = overrides["x-kubernetes-validations"]
    assert rule["rule"].startswith("self.all(key, key in [") and '"latencyBuckets"' in rule["rule"]
    assert overrides["maxProperties"] == len(QUERY_NAMES) == 23  # bounds the rule's cost for the API server
