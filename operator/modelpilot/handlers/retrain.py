"""RetrainPolicy: a timer that observes the monitor, Job, MLflow and canary, and acts on the decision."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from modelpilot.api import RETRAIN_POLICY
from modelpilot.api.retrain import RetrainPolicySpec, RetrainPolicyStatus
from modelpilot.reconcile import PolicyRef
from modelpilot.reconcile.pod_policy import PodPolicy
from modelpilot.reconcile.retrain import (
    RetrainObservations,
    decide_retrain,
)
from modelpilot.sources.retrain import apply_retrain_actions, observe_retrain

from .scheduler import schedule
from .tick import TickSteps

__all__ = ["RETRAIN_TICK", "TICK_SECONDS", "set_pod_policy"]

TICK_SECONDS = 5.0
_POD_POLICY = [PodPolicy()]  # the operator's configuration, set once at start


def set_pod_policy(policy: PodPolicy) -> None:
    """What training templates may ask for (``modelpilot run --training-service-account``)."""
    _POD_POLICY[0] = policy


async def _observe(
    spec: RetrainPolicySpec, status: RetrainPolicyStatus, ref: PolicyRef, annotations: Mapping[str, str], now: datetime
) -> RetrainObservations:
    observed = await observe_retrain(spec, status, namespace=ref.namespace, annotations=annotations)
    return dataclasses.replace(observed, pod_policy=_POD_POLICY[0])


RETRAIN_TICK = TickSteps(kind=RETRAIN_POLICY, ref=PolicyRef, observe=_observe, decide=decide_retrain, apply=apply_retrain_actions)


schedule(RETRAIN_TICK, TICK_SECONDS)
