"""What a CanaryRelease tick reads (needs, observations) and what it asks for (the plan, the
notifications): plain values that the sources fill in and carry out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..queries import QueryOutcome

__all__ = [
    "RESTART_ANNOTATION",
    "AliasTarget",
    "CanaryAction",
    "CanaryNeeds",
    "CanaryObservations",
    "CanaryPlan",
    "DeploymentView",
    "HookAnswer",
    "HookCall",
    "MetricAnswer",
    "MetricQueries",
    "Notification",
    "answers_by_type",
    "controller_uid",
]

RESTART_ANNOTATION = "modelpilot.dev/restartedAt"


@dataclass(frozen=True)
class HookAnswer:
    """A webhook's answer: yes (2xx) or no, with what it said."""

    ok: bool
    message: str


@dataclass(frozen=True)
class DeploymentView:
    """What a release reads of a Deployment: its counts, and the body to build from."""

    name: str
    replicas: int
    generation: int
    observed_generation: int
    status_replicas: int
    updated: int
    ready: int
    labels: Mapping[str, str] = field(default_factory=dict)
    template_annotations: Mapping[str, str] = field(default_factory=dict)
    controller_uid: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DeploymentView:
        meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status") or {}
        return cls(
            name=meta.get("name", ""),
            replicas=int(spec.get("replicas", 1)),
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            status_replicas=int(status.get("replicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            labels=meta.get("labels") or {},
            template_annotations=(spec.get("template", {}).get("metadata") or {}).get("annotations") or {},
            controller_uid=controller_uid(body),
            body=body,
        )

    @property
    def rolled_out(self) -> bool:
        """Every replica runs the current template and is ready, as `kubectl rollout status` judges."""
        return (
            self.observed_generation >= self.generation
            and self.updated == self.replicas
            and self.status_replicas == self.updated
            and self.ready >= self.updated
        )


@dataclass(frozen=True)
class MetricQueries:
    """One metric's PromQL for the candidate and for the stable version."""

    candidate: str
    stable: str


@dataclass(frozen=True)
class MetricAnswer:
    """The candidate's and the stable's answers to one metric's queries."""

    candidate: QueryOutcome
    stable: QueryOutcome


@dataclass(frozen=True)
class HookCall:
    """One webhook to call this tick, with the body the decision layer wrote."""

    type: str
    secret: str
    key: str
    timeout: timedelta
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class CanaryNeeds:
    """What one tick must read beyond the Deployments: analysis queries, the alias, webhooks."""

    at: datetime
    queries: Mapping[str, MetricQueries] = field(default_factory=dict)
    alias: bool = False
    hooks: tuple[HookCall, ...] = ()


@dataclass(frozen=True)
class CanaryObservations:
    """One tick's view of the world. ``problem`` (reason, message) says why the cluster could not
    be read; the decision then holds everything as it is."""

    stable: DeploymentView | None = None
    stable_service: Mapping[str, Any] | None = None
    candidate: DeploymentView | None = None
    actual_weight: float | None = None
    problem: tuple[str, str] | None = None
    alias_holder: str | None = None
    registry_error: str | None = None
    metrics: Mapping[str, MetricAnswer] = field(default_factory=dict)
    hooks: Mapping[str, HookAnswer] = field(default_factory=dict)
    # The candidate Service under the release's name, when one exists: (exists, controller uid).
    candidate_service: tuple[bool, str | None] = (False, None)


@dataclass(frozen=True)
class AliasTarget:
    """Where an MLflow alias must point (None: nowhere), and tags the version gets first."""

    model: str
    alias: str
    version: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CanaryPlan:
    """What must be true after this tick, applied in order by the sources.

    ``drain_first``: the router weight moves before the candidate Deployment changes (traffic
    leaves pods before they go away); otherwise after (pods exist before traffic comes).
    """

    deployment: Mapping[str, Any]
    weight: int
    drain_first: bool
    mirror: int = 0  # percent of the stable's requests copied to the candidate (a shadow)
    service: Mapping[str, Any] | None = None
    restart: str | None = None
    alias: AliasTarget | None = None


@dataclass(frozen=True)
class Notification:
    """Transitions to post to every event webhook, once, best effort."""

    payloads: tuple[Mapping[str, Any], ...]


CanaryAction = CanaryPlan | Notification


def controller_uid(body: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (the ownerReference with controller: true), if any."""
    references = (body.get("metadata") or {}).get("ownerReferences") or []
    return next((str(r.get("uid")) for r in references if r.get("controller")), None)


def answers_by_type(hooks: Sequence[HookCall], answers: Sequence[HookAnswer]) -> dict[str, HookAnswer]:
    """One answer per hook type from the answers of each hook called: yes when every hook of
    that type said yes; the message says what each one that said no answered."""
    by_type: dict[str, list[HookAnswer]] = {}
    for hook, answer in zip(hooks, answers, strict=True):
        by_type.setdefault(hook.type, []).append(answer)
    return {
        type_: HookAnswer(all(a.ok for a in got), "; ".join(a.message for a in got if not a.ok) or got[0].message)
        for type_, got in by_type.items()
    }
