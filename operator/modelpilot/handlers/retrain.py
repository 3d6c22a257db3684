"""RetrainPolicy: a timer that observes the monitor, Job, MLflow and canary, and acts on the decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from modelpilot.api import RETRAIN_POLICY
from modelpilot.api.retrain import RetrainPolicySpec, RetrainPolicyStatus
from modelpilot.reconcile import PolicyRef
from modelpilot.reconcile.retrain import (
    RetrainObservations,
    decide_retrain,
)
from modelpilot.sources.retrain import apply_retrain_actions, observe_retrain

from .scheduler import schedule
from .tick import TickSteps

__all__ = ["RETRAIN_TICK", "TICK_SECONDS"]

TICK_SECONDS = 5.0


async def _observe(
    spec: RetrainPolicySpec, status: RetrainPolicyStatus, ref: PolicyRef, annotations: Mapping[str, str], now: datetime
) -> RetrainObservations:
    return await observe_retrain(spec, status, namespace=ref.namespace, annotations=annotations)


RETRAIN_TICK = TickSteps(kind=RETRAIN_POLICY, ref=PolicyRef, observe=_observe, decide=decide_retrain, apply=apply_retrain_actions)


schedule(RETRAIN_TICK, TICK_SECONDS)
