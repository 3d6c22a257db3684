"""CustomResourceDefinitions generated from the pydantic models, so schema and code never disagree.

pydantic emits JSON Schema (with ``$ref``, ``anyOf`` for optionals, numeric exclusive bounds);
Kubernetes wants a structural OpenAPI v3 schema. ``structural_schema`` translates one into the
other; ``build_crd`` wraps it with names, printer columns and the status subresource.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .common import ApiModel
from .kinds import CATEGORY, GROUP, KINDS, VERSION, Kind

__all__ = ["build_crd", "render_crds", "structural_schema"]

# JSON Schema keywords that have a meaning in a Kubernetes structural schema and are kept.
_KEPT = {
    "type",
    "format",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "nullable",
}


def structural_schema(model: type[ApiModel]) -> dict[str, Any]:
    """The model's JSON Schema, inlined and translated into a Kubernetes structural schema."""
    schema = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    definitions = schema.pop("$defs", {})
    return _translate(schema, definitions)


def _resolve(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **rest}
    return node


def _translate(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, definitions)
    nullable = False
    if "anyOf" in node:
        options = [_resolve(o, definitions) for o in node["anyOf"]]
        non_null = [o for o in options if o.get("type") != "null"]
        nullable = len(non_null) < len(options)
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        if len(non_null) == 1:
            node = _merge(non_null[0], outer)
        else:
            # A union of scalar types (e.g. a hyperparameter value): kept as given.
            node = {**outer, "x-kubernetes-preserve-unknown-fields": True}
    if "const" in node:
        node = {**node, "enum": [node["const"]]}

    # A null default says only "optional", which nullable already says.
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEPT and not (k == "default" and v is None)}
    if nullable:
        out["nullable"] = True
    if "exclusiveMinimum" in node:
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if "exclusiveMaximum" in node:
        out["maximum"], out["exclusiveMaximum"] = node["exclusiveMaximum"], True
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value

    kind = node.get("type")
    if kind == "object" or "properties" in node:
        out["type"] = "object"
        if "properties" in node:
            out["properties"] = {name: _translate(child, definitions) for name, child in node["properties"].items()}
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _translate(extra, definitions)
        elif "properties" not in node:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if keys := node.get("propertyNames", {}).get("enum"):
            # A structural schema has no propertyNames: a map's allowed keys become a CEL rule.
            key_rule = {"rule": f"self.all(key, key in {json.dumps(keys)})", "message": f"keys must be one of: {', '.join(keys)}"}
            out["x-kubernetes-validations"] = [*out.get("x-kubernetes-validations", []), key_rule]
    elif kind == "array":
        items = node.get("items")
        out["items"] = _translate(items, definitions) if items else {"x-kubernetes-preserve-unknown-fields": True}
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` laid over ``base``, nested dicts merged (json_schema_extra may refine ``items``)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_crd(kind: Kind[Any, Any]) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, ready to apply."""
    spec_schema = structural_schema(kind.spec)
    status_schema = structural_schema(kind.status)
    spec_schema["description"] = kind.spec.__doc__.strip() if kind.spec.__doc__ else kind.description
    status_schema["description"] = "Observed state, written by the modelpilot operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "modelpilot"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in kind.printer_columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD, as checked in under crds/."""
    header = "# Generated by `modelpilot crds` from modelpilot.api; do not edit.\n"
    return {f"{kind.crd_name}.yaml": header + yaml.safe_dump(build_crd(kind), sort_keys=False, width=120) for kind in KINDS}
