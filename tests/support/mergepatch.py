"""A JSON merge patch (RFC 7386) applied as the API server applies it, written independently of
the operator's own merge_patch so tests can check one against the other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["apply_merge_patch"]


def apply_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = apply_merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged
