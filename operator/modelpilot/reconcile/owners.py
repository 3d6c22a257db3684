"""The identity of a modelpilot resource in a tick, and its ownerReference for the objects the
operator creates for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from modelpilot.api import CANARY_RELEASE, GROUP, MODEL_MONITOR, RETRAIN_POLICY, VERSION

__all__ = ["MonitorRef", "OwnerRef", "PolicyRef", "ReleaseRef"]


@dataclass(frozen=True)
class OwnerRef:
    namespace: str
    name: str
    uid: str
    kind: ClassVar[str]

    def owner_reference(self) -> dict[str, Any]:
        """The controller reference that makes Kubernetes collect the object with its owner."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


class MonitorRef(OwnerRef):
    """A ModelMonitor."""

    kind = MODEL_MONITOR.kind


class ReleaseRef(OwnerRef):
    """A CanaryRelease, owner of its candidate Deployment and Service."""

    kind = CANARY_RELEASE.kind


class PolicyRef(OwnerRef):
    """A RetrainPolicy, owner of its training Jobs and the CanaryReleases it hands off."""

    kind = RETRAIN_POLICY.kind
