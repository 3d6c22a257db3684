"""RetrainPolicy: a timer that observes the monitor, Job, MLflow and canary, and acts on the plan."""

from __future__ import annotations

from typing import Any

import kopf

from modelpilot.api import GROUP, RETRAIN_POLICY, VERSION, SpecError, load_spec, load_status, now_utc
from modelpilot.reconcile import merge_patch
from modelpilot.reconcile.owners import PolicyRef
from modelpilot.reconcile.retrain import plan_retrain
from modelpilot.sources.training import apply_retrain_actions, gather_retrain_observations

from .metrics import STATES

__all__ = ["TICK_SECONDS"]

TICK_SECONDS = 5.0


@kopf.timer(GROUP, VERSION, RETRAIN_POLICY.plural, interval=TICK_SECONDS, id="reconcile-retrainpolicy")
async def reconcile_policy(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    try:
        policy = load_spec(RETRAIN_POLICY, spec)
    except SpecError:
        return  # admission already reported it in Ready
    previous = load_status(RETRAIN_POLICY, status)
    namespace = meta["namespace"]
    observations = await gather_retrain_observations(policy, previous, namespace=namespace, annotations=dict(meta.annotations))
    owner = PolicyRef(namespace, meta["name"], meta["uid"])
    decision = plan_retrain(policy, previous, observations, owner=owner, generation=meta.get("generation"), now=now_utc())
    error = await apply_retrain_actions(policy, namespace, decision.actions)
    if error is not None:
        kopf.warn(body, reason="RegistryUnavailable", message=error)
        return  # nothing recorded: the next tick decides again from the same status
    patch.status.update(merge_patch(dict(status), decision.status.to_body()))
    for event in decision.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    STATES.update(RETRAIN_POLICY.kind, namespace, meta["name"], decision.status.conditions)
