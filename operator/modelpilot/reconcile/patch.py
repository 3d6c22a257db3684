"""The JSON merge patch (RFC 7386) that turns one status body into another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["merge_patch"]


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Only what changed: changed values, nested objects recursively, null for removed keys.

    Lists are replaced whole, as merge patches do. ``new`` should hold no nulls (dump with
    exclude_none): the API server drops them inside lists, and kopf would then see its patch
    as not applied. An empty result means there is nothing to send.
    """
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif before != value or key not in old:
            patch[key] = value
    return patch
