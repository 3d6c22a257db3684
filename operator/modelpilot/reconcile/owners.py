"""Resources as owners of the objects the operator creates for them (ownerReferences)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from modelpilot.api import CANARY_RELEASE, GROUP, RETRAIN_POLICY, VERSION

__all__ = ["OwnerRef", "PolicyRef", "ReleaseRef"]


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


class ReleaseRef(OwnerRef):
    """A CanaryRelease, owner of its candidate Deployment and Service."""

    kind = CANARY_RELEASE.kind


class PolicyRef(OwnerRef):
    """A RetrainPolicy, owner of its training Jobs and the CanaryReleases it hands off."""

    kind = RETRAIN_POLICY.kind
