"""Spec admission for every kind: validate, write Ready and observedGeneration, warn on bad specs."""

from __future__ import annotations

from typing import Any

import kopf

from modelpilot.api import GROUP, KINDS, VERSION, Condition, Kind, load_status, now_utc
from modelpilot.reconcile import admit

from .metrics import STATES

__all__ = ["register_admission"]


def register_admission(kind: Kind[Any, Any]) -> None:
    """Register create/update/resume handlers that admit ``kind``'s spec."""

    @kopf.on.resume(GROUP, VERSION, kind.plural, id=f"admit-{kind.singular}")
    @kopf.on.create(GROUP, VERSION, kind.plural, id=f"admit-{kind.singular}")
    @kopf.on.update(GROUP, VERSION, kind.plural, id=f"admit-{kind.singular}", field="spec")
    async def admit_spec(
        body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
    ) -> None:
        before = load_status(kind, status).conditions
        result = admit(kind, spec, list(before), generation=meta.get("generation"), now=now_utc())
        write_conditions(patch, result.conditions, meta.get("generation"))
        STATES.update(kind.kind, meta["namespace"], meta["name"], result.conditions)
        if result.error is not None:
            kopf.warn(body, reason="InvalidSpec", message=str(result.error))

    @kopf.on.delete(GROUP, VERSION, kind.plural, id=f"forget-{kind.singular}", optional=True)
    async def forget(meta: kopf.Meta, **_: Any) -> None:
        STATES.forget(kind.kind, meta["namespace"], meta["name"])


def write_conditions(patch: kopf.Patch, conditions: list[Condition], generation: int | None) -> None:
    patch.status["conditions"] = [c.to_body() for c in conditions]
    patch.status["observedGeneration"] = generation


for _kind in KINDS:
    register_admission(_kind)
