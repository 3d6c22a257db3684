"""Traffic routers of a CanaryRelease: how a candidate weight becomes traffic.

One interface, three implementations. ``replicas`` needs no mesh: stable and candidate pods sit
behind the stable Service, which spreads requests over ready pods, so the replica counts are the
weights. ``gatewayAPI`` and ``istio`` write the weights into an HTTPRoute's backendRefs or a
VirtualService's route. The route objects belong to someone else (a GitOps tool): only the weight
entries of the stable backend, the candidate backend and the optional header rule are written,
read-modify-write under the object's resourceVersion.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes

from modelpilot.api.canary import CanaryReleaseSpec, HeaderMatch
from modelpilot.reconcile.canary import (
    HTTPROUTE,
    VIRTUALSERVICE,
    RouteObject,
    candidate_name,
    weighted_http_route,
    weighted_virtual_service,
)

from .kubernetes import Conflict, api_client, kube_call
from .pools import KUBERNETES

__all__ = ["Router", "router_for"]


class Router(ABC):
    """Reads and writes the traffic split of one release."""

    @abstractmethod
    async def read_weight(self, stable_ready: int, candidate_ready: int) -> float | None:
        """Percent of traffic on the candidate as things stand; None when nothing serves."""

    @abstractmethod
    async def set_weight(self, weight: int, mirror: int = 0) -> None:
        """Send ``weight`` percent of traffic to the candidate, and a copy of ``mirror`` percent
        of the stable's; a no-op when already so."""


class ReplicaRouter(Router):
    """The stable Service spreads requests over ready pods, so ready replicas are the weights."""

    async def read_weight(self, stable_ready: int, candidate_ready: int) -> float | None:
        total = stable_ready + candidate_ready
        return 100.0 * candidate_ready / total if total else None

    async def set_weight(self, weight: int, mirror: int = 0) -> None:
        return None  # the candidate's replica count, applied with its Deployment, is the weight (no mirror)


class RouteRouter(Router):
    """Weights in a route object: an HTTPRoute (Gateway API) or a VirtualService (Istio)."""

    def __init__(self, kind: RouteObject, name: str, namespace: str, *, stable: str, candidate: str, header: HeaderMatch | None):
        self.kind, self.name, self.namespace = kind, name, namespace
        self.stable, self.candidate, self.header = stable, candidate, header

    @property
    def _field(self) -> str:
        return "rules" if self.kind is HTTPROUTE else "http"

    def _weighted(self, entries: Sequence[Mapping[str, Any]], weight: int, mirror: int) -> list[dict[str, Any]]:
        edit = weighted_http_route if self.kind is HTTPROUTE else weighted_virtual_service
        return edit(entries, stable=self.stable, candidate=self.candidate, weight=weight, header=self.header, mirror=mirror)

    def _get(self) -> dict[str, Any]:
        api = kubernetes.client.CustomObjectsApi(api_client())
        body: dict[str, Any] = kube_call(
            api.get_namespaced_custom_object, self.kind.group, self.kind.version, self.namespace, self.kind.plural, self.name
        )
        return body

    async def read_weight(self, stable_ready: int, candidate_ready: int) -> float | None:
        body = await KUBERNETES.run(self.namespace, self._get)
        for entry in body.get("spec", {}).get(self._field) or []:
            if self.kind is HTTPROUTE:
                weights = {r.get("name"): float(r.get("weight", 1)) for r in entry.get("backendRefs") or []}
            else:
                weights = {d.get("destination", {}).get("host"): float(d.get("weight", 100)) for d in entry.get("route") or []}
            if self.stable in weights:
                total = sum(weights.values())
                return 100.0 * weights.get(self.candidate, 0.0) / total if total else None
        return None

    async def set_weight(self, weight: int, mirror: int = 0) -> None:
        await KUBERNETES.run(self.namespace, self._set, weight, mirror)

    def _set(self, weight: int, mirror: int) -> None:
        body = self._get()
        entries = body.get("spec", {}).get(self._field) or []
        wanted = self._weighted(entries, weight, mirror)
        if wanted == entries:
            return
        api = kubernetes.client.CustomObjectsApi(api_client())
        # The resourceVersion makes the write conditional: a concurrent edit (a GitOps sync) wins,
        # and the next tick writes the weights again on top of it.
        patch = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}, "spec": {self._field: wanted}}
        try:
            kube_call(
                api.patch_namespaced_custom_object,
                self.kind.group,
                self.kind.version,
                self.namespace,
                self.kind.plural,
                self.name,
                patch,
            )
        except Conflict:
            pass


def router_for(spec: CanaryReleaseSpec, namespace: str, release: str) -> Router:
    """The router ``spec.router`` names."""
    router = spec.router
    if router.type == "replicas":
        return ReplicaRouter()
    assert spec.target.service is not None  # the spec validator demands it for these routers
    kind, ref = (HTTPROUTE, router.http_route) if router.type == "gatewayAPI" else (VIRTUALSERVICE, router.virtual_service)
    assert ref is not None
    return RouteRouter(
        kind,
        ref.name,
        namespace,
        stable=spec.target.service,
        candidate=candidate_name(release),
        header=router.header_match,
    )
