"""CanaryRelease: a short timer per release that decides from status and observations, writes
the status, then makes the plan true."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from modelpilot.api import CANARY_RELEASE, GROUP, VERSION, SpecError, load_spec, load_status, now_utc
from modelpilot.reconcile import merge_patch
from modelpilot.reconcile.canary import observation_needs, reconcile_canary
from modelpilot.reconcile.canary_objects import ReleaseRef
from modelpilot.sources.canary import CanaryCluster
from modelpilot.sources.kubernetes import KubernetesReader

from .metrics import STATES

__all__ = ["TICK_SECONDS"]

# Each tick re-applies the plan; the release's own interval lives in status.nextCheck.
TICK_SECONDS = 2.0
CLUSTER = CanaryCluster(KubernetesReader())


# A failed tick is retried at the next tick, not after kopf's default minute of backoff.
@kopf.timer(GROUP, VERSION, CANARY_RELEASE.plural, interval=TICK_SECONDS, backoff=TICK_SECONDS, id="progress-canaryrelease")
async def progress_release(body: kopf.Body, meta: kopf.Meta, logger: logging.Logger, **_: Any) -> None:
    ref = ReleaseRef(meta["namespace"], meta["name"], meta["uid"])
    stored = await CLUSTER.read_release(ref.namespace, ref.name)
    try:
        spec = load_spec(CANARY_RELEASE, stored.get("spec"))
    except SpecError:
        return  # admission already reported it in Ready
    previous, now = load_status(CANARY_RELEASE, stored.get("status")), now_utc()
    needs = observation_needs(spec, previous, ref=ref, now=now)
    observations = await CLUSTER.observe(spec, needs, namespace=ref.namespace, release=ref.name)
    result = reconcile_canary(spec, previous, observations, ref=ref, generation=stored["metadata"]["generation"], now=now)
    patch = merge_patch(stored.get("status") or {}, result.status.to_body())
    if patch and not await CLUSTER.write_status(ref.namespace, ref.name, stored["metadata"]["resourceVersion"], patch):
        return  # someone wrote in between: decide again from the fresh status next tick
    failures = await CLUSTER.apply(spec, result.plan, namespace=ref.namespace, release=ref.name) if result.plan else []
    for failure in failures:
        logger.warning("will retry: %s", failure)
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    await CLUSTER.notify(spec, ref.namespace, result.notifications)
    STATES.update(CANARY_RELEASE.kind, ref.namespace, ref.name, result.status.conditions)
