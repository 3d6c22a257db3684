"""Spec admission for every kind: validate, write Ready, warn on bad specs (``admission_patch``
says what is written)."""

from __future__ import annotations

from typing import Any

import kopf

from modelpilot.api import GROUP, KINDS, VERSION, Kind, now_utc
from modelpilot.reconcile import admission_patch

from .leadership import LEADERSHIP
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
        if not LEADERSHIP.acting():
            return  # a standby writes nothing; the leader admits
        result, status_patch = admission_patch(kind, spec, status, generation=meta.get("generation"), now=now_utc())
        patch.status.update(status_patch)
        STATES.update(kind.kind, meta["namespace"], meta["name"], result.conditions)
        if result.error is not None:
            kopf.warn(body, reason="InvalidSpec", message=str(result.error))

    @kopf.on.delete(GROUP, VERSION, kind.plural, id=f"forget-{kind.singular}", optional=True)
    async def forget(meta: kopf.Meta, **_: Any) -> None:
        STATES.forget(kind.kind, meta["namespace"], meta["name"])


for _kind in KINDS:
    register_admission(_kind)
