"""How a candidate weight becomes traffic, as pure functions: candidate naming, candidate
replicas behind the ``replicas`` router, and the weighted rules of an HTTPRoute (Gateway API) or
a VirtualService (Istio). Route objects belong to someone else (a GitOps tool): only the weight
entries of the stable backend, the candidate backend and the optional header rule are changed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelpilot.api.canary import HeaderMatch, RouterSpec

__all__ = [
    "HTTPROUTE",
    "VIRTUALSERVICE",
    "RouteObject",
    "candidate_name",
    "candidate_replicas",
    "weighted_http_route",
    "weighted_virtual_service",
]


@dataclass(frozen=True)
class RouteObject:
    """Group, version and plural of a routing custom resource."""

    group: str
    version: str
    plural: str


HTTPROUTE = RouteObject("gateway.networking.k8s.io", "v1", "httproutes")
VIRTUALSERVICE = RouteObject("networking.istio.io", "v1", "virtualservices")


def candidate_name(release: str) -> str:
    """Name of the candidate Deployment and of its Service."""
    return f"{release}-candidate"


def candidate_replicas(router: RouterSpec, weight: int, stable_replicas: int) -> int:
    """Candidate replicas while the candidate is analysed at ``weight`` percent.

    ``replicas``: c = round(s * w / (100 - w)) so that c / (s + c) is as close to w as whole pods
    allow, at least 1, at most ``maxCandidateReplicas`` (default s). The mesh routers keep the
    candidate at the stable's capacity from the start: weights then move without waiting for pods.
    """
    if router.type != "replicas":
        return max(stable_replicas, 1)
    if weight <= 0:
        return 0
    cap = router.max_candidate_replicas or max(stable_replicas, 1)
    if weight >= 100:
        return cap
    # floor(x + 0.5), not round(): Python rounds halves to even, and 0.5 must give a pod.
    return min(cap, max(1, math.floor(stable_replicas * weight / (100 - weight) + 0.5)))


def _is_service_ref(ref: Mapping[str, Any], name: str) -> bool:
    return ref.get("name") == name and ref.get("kind", "Service") == "Service" and not ref.get("group")


def _mirror_filters(rule: Mapping[str, Any], candidate: str, port: Mapping[str, Any], mirror: int) -> list[dict[str, Any]]:
    """A rule's filters without a mirror to the candidate, plus one at ``mirror`` percent when asked."""
    filters = [
        copy.deepcopy(dict(f))
        for f in rule.get("filters") or []
        if not (
            f.get("type") == "RequestMirror" and (f.get("requestMirror") or {}).get("backendRef", {}).get("name") == candidate
        )
    ]
    if mirror > 0:
        # percent is Gateway API 1.2's; left out at 100, which every version mirrors by default.
        extra = {} if mirror >= 100 else {"percent": mirror}
        filters.append({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": candidate, **port}, **extra}})
    return filters


def weighted_http_route(
    rules: Sequence[Mapping[str, Any]],
    *,
    stable: str,
    candidate: str,
    weight: int,
    header: HeaderMatch | None,
    mirror: int = 0,
) -> list[dict[str, Any]]:
    """An HTTPRoute's rules with ``weight`` percent of every rule that serves ``stable`` sent to
    ``candidate``; other backends and rules are left as they are.

    With ``header``, a rule matching the header (on each of the stable rule's matches) sends to the
    candidate alone, ahead of the weighted rule. At weight 0 the candidate backend and the header
    rule are removed, which gives back the route as it was but for the stable weight.
    """
    result: list[dict[str, Any]] = []
    for rule in rules:
        refs = list(rule.get("backendRefs") or [])
        if refs and all(_is_service_ref(r, candidate) for r in refs):
            continue  # the header rule written earlier: rebuilt below when still wanted
        stable_ref = next((r for r in refs if _is_service_ref(r, stable)), None)
        if stable_ref is None:
            result.append(copy.deepcopy(dict(rule)))
            continue
        port = {"port": stable_ref["port"]} if "port" in stable_ref else {}
        others = [copy.deepcopy(dict(r)) for r in refs if r is not stable_ref and not _is_service_ref(r, candidate)]
        weighted = [{**copy.deepcopy(dict(stable_ref)), "weight": 100 - weight}]
        if weight > 0:
            weighted.append({"name": candidate, **port, "weight": weight})
            if header is not None:
                matches = rule.get("matches") or [{}]
                exact = {"type": "Exact", "name": header.name, "value": header.value}
                result.append(
                    {
                        "matches": [{**copy.deepcopy(dict(m)), "headers": [*m.get("headers", []), exact]} for m in matches],
                        "backendRefs": [{"name": candidate, **port}],
                    }
                )
        edited = {**copy.deepcopy(dict(rule)), "backendRefs": weighted + others}
        filters = _mirror_filters(rule, candidate, port, mirror)
        if filters:
            edited["filters"] = filters
        else:
            edited.pop("filters", None)
        result.append(edited)
    return result


def _is_host(destination: Mapping[str, Any], service: str) -> bool:
    host = str(destination.get("host", ""))
    return host == service or host.startswith(f"{service}.")


def weighted_virtual_service(
    http: Sequence[Mapping[str, Any]],
    *,
    stable: str,
    candidate: str,
    weight: int,
    header: HeaderMatch | None,
    mirror: int = 0,
) -> list[dict[str, Any]]:
    """A VirtualService's http routes, weighted (and mirrored) as :func:`weighted_http_route` does an HTTPRoute."""
    result: list[dict[str, Any]] = []
    for route in http:
        destinations = list(route.get("route") or [])
        if destinations and all(_is_host(d.get("destination", {}), candidate) for d in destinations):
            continue
        stable_dest = next((d for d in destinations if _is_host(d.get("destination", {}), stable)), None)
        if stable_dest is None:
            result.append(copy.deepcopy(dict(route)))
            continue
        port = {"port": stable_dest["destination"]["port"]} if "port" in stable_dest["destination"] else {}
        others = [
            copy.deepcopy(dict(d))
            for d in destinations
            if d is not stable_dest and not _is_host(d.get("destination", {}), candidate)
        ]
        weighted = [{**copy.deepcopy(dict(stable_dest)), "weight": 100 - weight}]
        if weight > 0:
            weighted.append({"destination": {"host": candidate, **port}, "weight": weight})
            if header is not None:
                matches = route.get("match") or [{}]
                exact = {header.name: {"exact": header.value}}
                result.append(
                    {
                        "match": [{**copy.deepcopy(dict(m)), "headers": {**m.get("headers", {}), **exact}} for m in matches],
                        "route": [{"destination": {"host": candidate, **port}}],
                    }
                )
        edited = {**copy.deepcopy(dict(route)), "route": weighted + others}
        if _is_host(edited.get("mirror") or {}, candidate):
            edited.pop("mirror", None)
            edited.pop("mirrorPercentage", None)
        if mirror > 0:
            edited["mirror"] = {"host": candidate, **port}
            edited["mirrorPercentage"] = {"value": float(mirror)}
        result.append(edited)
    return result
