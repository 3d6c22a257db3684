"""One RetrainPolicy tick's decision in the making: what it decides from, and the actions and
Events it gathers on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from modelpilot.api.retrain import RetrainPolicySpec

from ..decision import EventToPost
from ..owners import PolicyRef
from .observations import RetrainAction, RetrainObservations

__all__ = ["PolicyStep"]


@dataclass
class PolicyStep:
    spec: RetrainPolicySpec
    obs: RetrainObservations
    owner: PolicyRef
    now: datetime
    actions: list[RetrainAction] = field(default_factory=list)
    events: list[EventToPost] = field(default_factory=list)
