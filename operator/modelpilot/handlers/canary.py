"""CanaryRelease: a short timer per release; each tick decides from status and observations,
writes the status, then makes the plan true."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from modelpilot.api import CANARY_RELEASE
from modelpilot.api.canary import CanaryReleaseSpec, CanaryReleaseStatus
from modelpilot.reconcile import ReleaseRef
from modelpilot.reconcile.canary import (
    CanaryObservations,
    decide_canary,
    is_due,
)
from modelpilot.sources.canary import CanaryCluster
from modelpilot.sources.kubernetes import KubernetesReader

from .scheduler import schedule
from .tick import TickSteps

__all__ = ["CANARY_TICK", "TICK_SECONDS"]

# Each tick re-applies the plan; the release's own interval lives in status.nextCheck.
TICK_SECONDS = 2.0
CLUSTER = CanaryCluster(KubernetesReader())


async def _observe(
    spec: CanaryReleaseSpec, status: CanaryReleaseStatus, ref: ReleaseRef, annotations: Mapping[str, str], now: datetime
) -> CanaryObservations:
    return await CLUSTER.observe_canary(spec, status, ref=ref, now=now)


CANARY_TICK = TickSteps(
    kind=CANARY_RELEASE,
    ref=ReleaseRef,
    observe=_observe,
    decide=decide_canary,
    apply=CLUSTER.apply_canary_actions,
    due=is_due,
)


schedule(CANARY_TICK, TICK_SECONDS)
