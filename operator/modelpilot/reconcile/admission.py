"""Admission of a resource's spec: validate it once and say so in the Ready condition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from modelpilot.api import ApiModel, Condition, Kind, SpecError, load_spec, load_status

from .conditions import set_condition

__all__ = ["Admission", "admission_patch", "admit"]

SpecT = TypeVar("SpecT", bound=ApiModel)


@dataclass(frozen=True)
class Admission(Generic[SpecT]):
    """The validated spec (None when invalid) and the conditions to write."""

    spec: SpecT | None
    conditions: list[Condition]
    error: SpecError | None = None


def admit(
    kind: Kind[SpecT, Any],
    spec: Mapping[str, Any] | None,
    conditions: list[Condition],
    *,
    generation: int | None,
    now: datetime,
    pending_message: str = "Spec accepted; waiting for the first evaluation.",
) -> Admission[SpecT]:
    """Validate ``spec``; an invalid one gets Ready=False/InvalidSpec naming the field to fix."""
    try:
        model = load_spec(kind, spec)
    except SpecError as err:
        updated = set_condition(conditions, "Ready", "False", "InvalidSpec", str(err), now=now, generation=generation)
        return Admission(spec=None, conditions=updated, error=err)
    ready = next((c for c in conditions if c.type == "Ready"), None)
    if ready is not None and ready.reason != "InvalidSpec":
        # An earlier evaluation already said more than "Pending"; keep it, at the generation it
        # was decided for: only the next tick's decision has seen this spec.
        updated = list(conditions)
    else:
        updated = set_condition(conditions, "Ready", "Unknown", "Pending", pending_message, now=now, generation=generation)
    return Admission(spec=model, conditions=updated)


def admission_patch(
    kind: Kind[SpecT, Any], spec: Mapping[str, Any] | None, status: Mapping[str, Any], *, generation: int | None, now: datetime
) -> tuple[Admission[SpecT], dict[str, Any]]:
    """The admission verdict on ``spec`` and the status patch that writes it.

    ``observedGeneration`` is in it only for an invalid spec (that verdict is the whole decision
    about it); a valid spec is observed by the kind's next tick, so until then the status says,
    as kstatus and Argo CD read it, that the new spec is not handled yet."""
    result = admit(kind, spec, list(load_status(kind, status).conditions), generation=generation, now=now)
    patch: dict[str, Any] = {"conditions": [c.to_body() for c in result.conditions]}
    if result.error is not None:
        patch["observedGeneration"] = generation
    return result, patch
