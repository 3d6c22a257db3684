"""A simulated world for the CanaryRelease decision: Deployments that roll out when asked, a
router, an MLflow alias, webhooks and Prometheus answers made from per-version behaviour.

Each tick is the operator's own tick function (``run_tick`` with the CanaryRelease steps), with
this world as the cluster it reads, writes and observes; it can drop a tick's status write or its
apply, as an operator killed at that point would.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.api import CANARY_RELEASE, Kind, load_spec, load_status
from modelpilot.api.canary import CanaryReleaseSpec, CanaryReleaseStatus
from modelpilot.handlers.canary import CANARY_TICK
from modelpilot.handlers.tick import run_tick
from modelpilot.instrument import DEFAULT_LATENCY_BUCKETS
from modelpilot.reconcile import EventToPost, OwnerRef, ReleaseRef
from modelpilot.reconcile.canary import (
    RESTART_ANNOTATION,
    CanaryAction,
    CanaryDecision,
    CanaryNeeds,
    CanaryObservations,
    CanaryPlan,
    DeploymentView,
    HookAnswer,
    MetricAnswer,
    Notification,
    observation_needs,
)
from modelpilot.reconcile.pod_policy import OPT_IN_LABEL
from modelpilot.reconcile.queries import QueryFailed, QueryOutcome, Sample
from tests.support.mergepatch import apply_merge_patch

__all__ = [
    "REF",
    "START",
    "Behaviour",
    "World",
    "feedback_samples",
    "latency_samples",
    "notifications_of",
    "plan_of",
    "release_spec",
    "requests_samples",
]

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REF = ReleaseRef("ml", "fraud-v4", "uid-1")


def plan_of(decision: CanaryDecision) -> CanaryPlan | None:
    """The plan among a decision's actions (None: touch nothing)."""
    return next((a for a in decision.actions if isinstance(a, CanaryPlan)), None)


def notifications_of(decision: CanaryDecision) -> list[Mapping[str, Any]]:
    """The event-webhook bodies among a decision's actions."""
    return [p for a in decision.actions if isinstance(a, Notification) for p in a.payloads]


def release_spec(**changes: Any) -> CanaryReleaseSpec:
    body: dict[str, Any] = {
        "model": "fraud",
        "target": {"deployment": "fraud", "service": "fraud"},
        "candidate": {"modelVersion": "4"},
        "stepWeights": [20, 50, 100],
        "interval": "10s",
        "analysis": {
            "prometheus": {"url": "http://prometheus:9090"},
            "window": "30s",
            "metrics": [
                {"name": "error-rate", "builtin": "error-rate", "thresholdRange": {"max": 0.05}},
                {"name": "latency", "builtin": "latency", "thresholdRange": {"max": 0.5}},
                {"name": "accuracy", "builtin": "accuracy", "thresholdRange": {"min": 0.5}},
            ],
        },
        "mlflow": {"trackingUri": "http://mlflow:5000"},
    }
    for key, value in changes.items():
        body[key] = value
    return load_spec(CANARY_RELEASE, body)


@dataclass
class Behaviour:
    """How one version serves: error rate, latency (seconds, every request alike), accuracy."""

    error_rate: float = 0.0
    latency: float = 0.02
    accuracy: float = 0.95
    fraud_share: float = 0.1  # of its predictions


def requests_samples(n: float, b: Behaviour) -> list[Sample]:
    return [Sample({"status": "success"}, n * (1 - b.error_rate)), Sample({"status": "error"}, n * b.error_rate)]


def latency_samples(n: float, b: Behaviour) -> list[Sample]:
    bounds = [*DEFAULT_LATENCY_BUCKETS, float("inf")]
    # A spread around the mean: a fifth each in the mean's bucket's neighbours.
    index = next(i for i, bound in enumerate(bounds) if b.latency <= bound)
    shares = {max(index - 1, 0): 0.2, index: 0.6, min(index + 1, len(bounds) - 1): 0.2}
    cumulative, out = 0.0, []
    for i, bound in enumerate(bounds):
        cumulative += shares.get(i, 0.0) * n
        out.append(Sample({"le": "+Inf" if bound == float("inf") else repr(bound)}, cumulative))
    return out


def prediction_samples(n: float, b: Behaviour) -> list[Sample]:
    return [Sample({"class": "fraud"}, n * b.fraud_share), Sample({"class": "legit"}, n * (1 - b.fraud_share))]


def feedback_samples(n: float, b: Behaviour) -> list[Sample]:
    return [
        Sample({"predicted": "legit", "actual": "legit"}, n * b.accuracy),
        Sample({"predicted": "fraud", "actual": "legit"}, n * (1 - b.accuracy)),
    ]


@dataclass
class World:
    spec: CanaryReleaseSpec
    stable: Behaviour = field(default_factory=Behaviour)
    candidate_behaviour: Behaviour = field(default_factory=Behaviour)
    stable_replicas: int = 4
    samples: tuple[float, float] = (800.0, 400.0)
    prometheus_up: bool = True
    alias_holder: str | None = "3"
    hook_ok: dict[str, bool] = field(default_factory=dict)
    restart_ticks: int = 2
    now: datetime = START
    status: CanaryReleaseStatus = field(default_factory=CanaryReleaseStatus)
    candidate: dict[str, Any] | None = None
    weight: int = 0
    mirror: int = 0
    stable_annotation: str | None = None
    stable_generation: int = 1
    stable_observed: int = 1
    stable_labels: dict[str, str] = field(default_factory=lambda: {OPT_IN_LABEL: "true"})
    restarts_written: list[str] = field(default_factory=list)
    alias_moves: list[str | None] = field(default_factory=list)
    hooks_called: list[str] = field(default_factory=list)
    results: list[CanaryDecision] = field(default_factory=list)
    resource_version: int = 1
    _write: bool = True
    _apply: bool = True

    # -- observing -----------------------------------------------------------------------------

    def stable_body(self) -> dict[str, Any]:
        annotations = {RESTART_ANNOTATION: self.stable_annotation} if self.stable_annotation else {}
        ready = self.stable_replicas if self.stable_observed >= self.stable_generation else 0
        return {
            "metadata": {
                "name": "fraud",
                "generation": self.stable_generation,
                "labels": {"app": "fraud", **self.stable_labels},
            },
            "spec": {
                "replicas": self.stable_replicas,
                "selector": {"matchLabels": {"app": "fraud"}},
                "template": {
                    "metadata": {"labels": {"app": "fraud"}, "annotations": annotations},
                    "spec": {
                        "containers": [{"name": "server", "image": "fraud:1", "env": [{"name": "MODEL_NAME", "value": "fraud"}]}]
                    },
                },
            },
            "status": {
                "observedGeneration": self.stable_observed,
                "replicas": self.stable_replicas,
                "updatedReplicas": ready,
                "readyReplicas": ready,
            },
        }

    def candidate_view(self) -> DeploymentView | None:
        if self.candidate is None:
            return None
        body = copy.deepcopy(self.candidate)
        replicas = body["spec"]["replicas"]
        body["metadata"]["generation"] = 1
        body["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas}
        return DeploymentView.from_body(body)

    def actual_weight(self) -> float | None:
        if self.spec.router.type != "replicas":
            return float(self.weight)
        candidate = self.candidate["spec"]["replicas"] if self.candidate else 0
        total = self.stable_replicas + candidate
        return 100.0 * candidate / total if total else None

    def answers(self, needs: CanaryNeeds) -> dict[str, MetricAnswer]:
        share = (self.actual_weight() or 0.0) / 100
        n_stable, n_candidate = self.samples[0] * (1 - share) / 0.8, self.samples[1] * share / 0.2
        if self.mirror:
            n_candidate = n_stable * self.mirror / 100  # a copy of the stable's requests
        out = {}
        for name, queries in needs.queries.items():
            if not self.prometheus_up:
                error = QueryFailed("Unreachable", "cannot connect to Prometheus at http://prometheus:9090", queries.candidate)
                out[name] = MetricAnswer(QueryOutcome(queries.candidate, error=error), QueryOutcome(queries.stable, error=error))
                continue
            make = {
                "error-rate": requests_samples,
                "latency": latency_samples,
                "accuracy": feedback_samples,
                "Agreement": prediction_samples,
            }[name]
            out[name] = MetricAnswer(
                QueryOutcome(queries.candidate, samples=tuple(make(n_candidate, self.candidate_behaviour))),
                QueryOutcome(queries.stable, samples=tuple(make(n_stable, self.stable))),
            )
        return out

    def observe(self, needs: CanaryNeeds) -> CanaryObservations:
        for hook in needs.hooks:
            self.hooks_called.append(hook.type)
        return CanaryObservations(
            stable=DeploymentView.from_body(self.stable_body()),
            stable_service={"spec": {"selector": {"app": "fraud"}, "ports": [{"port": 80, "targetPort": 8501}]}},
            candidate=self.candidate_view(),
            actual_weight=self.actual_weight(),
            alias_holder=self.alias_holder if needs.alias else None,
            metrics=self.answers(needs),
            hooks={
                h.type: HookAnswer(
                    self.hook_ok.get(h.type, True), "answered 200" if self.hook_ok.get(h.type, True) else "answered 503: no"
                )
                for h in needs.hooks
            },
        )

    # -- acting --------------------------------------------------------------------------------

    def apply(self, plan: CanaryPlan | None) -> None:
        if plan is None:
            return
        self.candidate = copy.deepcopy(dict(plan.deployment))
        self.weight, self.mirror = plan.weight, plan.mirror
        if plan.restart is not None:
            self.restarts_written.append(plan.restart)
            if self.stable_annotation != plan.restart:
                self.stable_annotation = plan.restart
                self.stable_generation += 1
        if plan.alias is not None:
            self.alias_moves.append(plan.alias.version)
            self.alias_holder = plan.alias.version

    # -- the cluster the tick reads and writes -------------------------------------------------

    def body(self) -> dict[str, Any]:
        return {
            "metadata": {
                "namespace": REF.namespace,
                "name": REF.name,
                "uid": REF.uid,
                "generation": 1,
                "resourceVersion": str(self.resource_version),
            },
            "spec": self.spec.to_body(),
            "status": self.status.to_body(),
        }

    async def read(self, kind: Kind[Any, Any], ref: OwnerRef) -> Mapping[str, Any]:
        return self.body()

    async def write_status(self, kind: Kind[Any, Any], ref: OwnerRef, resource_version: str, patch: dict[str, Any]) -> bool:
        if not self._write or resource_version != str(self.resource_version):
            return False
        self.status = load_status(CANARY_RELEASE, apply_merge_patch(self.status.to_body(), patch))
        self.resource_version += 1
        return True

    async def post_event(self, body: Mapping[str, Any], event: EventToPost) -> None:
        pass  # each decision's Events are kept in ``results``

    async def _observe(
        self,
        spec: CanaryReleaseSpec,
        status: CanaryReleaseStatus,
        ref: ReleaseRef,
        annotations: Mapping[str, str],
        now: datetime,
    ) -> CanaryObservations:
        return self.observe(observation_needs(spec, status, ref=ref, now=now))

    async def _apply_actions(self, spec: CanaryReleaseSpec, ref: ReleaseRef, actions: Sequence[CanaryAction]) -> list[str]:
        if self._apply:
            self.apply(next((a for a in actions if isinstance(a, CanaryPlan)), None))
        return []

    def _decide(self, *args: Any, **kwargs: Any) -> CanaryDecision:
        decision = CANARY_TICK.decide(*args, **kwargs)
        self.results.append(decision)
        return decision

    def tick(self, *, seconds: float = 2, write: bool = True, apply: bool = True) -> CanaryDecision:
        """One operator tick. ``write=False``: killed before the status write (nothing happened);
        ``apply=False``: killed after the write, before the plan was applied."""
        # The stable's controller catches up with a restart after a few ticks.
        if self.stable_observed < self.stable_generation:
            self.restart_ticks -= 1
            if self.restart_ticks <= 0:
                self.stable_observed = self.stable_generation
        self._write, self._apply = write, apply
        steps = dataclasses.replace(CANARY_TICK, observe=self._observe, decide=self._decide, apply=self._apply_actions)
        asyncio.run(run_tick(steps, self.body(), self, logger=logging.getLogger("canary-world"), now=self.now))
        self.now += timedelta(seconds=seconds)
        return self.results[-1]

    def run_until(self, phase: str, *, limit: int = 200, **tick: Any) -> CanaryReleaseStatus:
        for _ in range(limit):
            if self.status.phase == phase:
                return self.status
            self.tick(**tick)
        raise AssertionError(f"no {phase} after {limit} ticks: {self.status.phase} {self.status.conditions}")

    def events(self) -> list[tuple[str, str]]:
        return [(e.reason, e.message) for r in self.results for e in r.events]
