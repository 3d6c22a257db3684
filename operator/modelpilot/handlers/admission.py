"""Spec admission for every kind: validate, write Ready, warn on bad specs.

``status.observedGeneration`` is written here only for an invalid spec (that verdict is the
whole decision about it); a valid spec is observed by the kind's next tick, so until then the
status says, as kstatus and Argo CD read it, that the new spec is not handled yet."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf

from modelpilot.api import GROUP, KINDS, VERSION, Kind, load_status, now_utc
from modelpilot.reconcile import Admission, admit

from .leadership import LEADERSHIP
from .metrics import STATES

__all__ = ["admission_patch", "register_admission"]


def register_admission(kind: Kind[Any, Any]) -> None:
    """Register create/update/resume handlers that admit ``kind``'s spec."""

    @kopf.on.resume(GROUP, VERSION, kind.plural, id=f"admit-{kind.singular}")
    @kopf.on.create(GROUP, VERSION, kind.plural, id=f"admit-{kind.singular}")
    @kopf.on.update(GROUP, VERSION, kind.plural, id=f"admit-{kind.singular}", field="spec")
    async def admit_spec(
        body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
    ) -> None:
        if not LEADERSHIP.acting():
            return  # a standby writes nothing; the leader admits
        result, status_patch = admission_patch(kind, spec, status, meta.get("generation"), now_utc())
        patch.status.update(status_patch)
        STATES.update(kind.kind, meta["namespace"], meta["name"], result.conditions)
        if result.error is not None:
            kopf.warn(body, reason="InvalidSpec", message=str(result.error))

    @kopf.on.delete(GROUP, VERSION, kind.plural, id=f"forget-{kind.singular}", optional=True)
    async def forget(meta: kopf.Meta, **_: Any) -> None:
        STATES.forget(kind.kind, meta["namespace"], meta["name"])


def admission_patch(
    kind: Kind[Any, Any], spec: Mapping[str, Any], status: Mapping[str, Any], generation: int | None, now: datetime
) -> tuple[Admission[Any], dict[str, Any]]:
    """The admission verdict and the status patch that writes it."""
    result = admit(kind, spec, list(load_status(kind, status).conditions), generation=generation, now=now)
    status_patch: dict[str, Any] = {"conditions": [c.to_body() for c in result.conditions]}
    if result.error is not None:
        status_patch["observedGeneration"] = generation
    return result, status_patch


for _kind in KINDS:
    register_admission(_kind)
