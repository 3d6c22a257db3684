"""Router arithmetic and route editing, without a cluster."""

from __future__ import annotations

import copy

import pytest

from modelpilot.api.canary import HeaderMatch, RouterSpec
from modelpilot.reconcile.canary import candidate_replicas, weighted_http_route, weighted_virtual_service

HEADER = HeaderMatch(name="x-canary", value="always")


@pytest.mark.parametrize(
    ("weight", "stable", "cap", "expected"),
    [
        (0, 4, None, 0),
        (20, 4, None, 1),
        (50, 4, None, 4),
        (75, 4, None, 4),
        (75, 4, 20, 12),
        (100, 4, 6, 6),
        (10, 2, None, 1),
        (25, 3, None, 1),
        (50, 1, None, 1),
    ],
)
def test_replica_router_approximates_the_weight_with_whole_pods(weight: int, stable: int, cap: int | None, expected: int) -> None:
    router = RouterSpec(type="replicas", max_candidate_replicas=cap)
    assert candidate_replicas(router, weight, stable) == expected


def test_mesh_routers_keep_the_candidate_at_the_stable_capacity() -> None:
    router = RouterSpec(type="gatewayAPI", http_route={"name": "r"})
    assert candidate_replicas(router, 10, 5) == 5 and candidate_replicas(router, 90, 5) == 5


RULES = [
    {
        "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
        "backendRefs": [{"name": "fraud", "port": 80}, {"name": "shadow", "port": 80, "weight": 0}],
    },
    {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}], "backendRefs": [{"name": "admin", "port": 80}]},
]


def test_http_route_weights_only_the_stable_backend_and_restores_at_zero() -> None:
    original = copy.deepcopy(RULES)
    weighted = weighted_http_route(RULES, stable="fraud", candidate="fraud-candidate", weight=30, header=None)
    assert weighted[0]["backendRefs"] == [
        {"name": "fraud", "port": 80, "weight": 70},
        {"name": "fraud-candidate", "port": 80, "weight": 30},
        {"name": "shadow", "port": 80, "weight": 0},
    ]
    assert weighted[0]["matches"] == RULES[0]["matches"] and weighted[1] == RULES[1]
    assert RULES == original
    # Applying again is a no-op; moving on rewrites the same entries; zero takes the candidate out.
    assert weighted_http_route(weighted, stable="fraud", candidate="fraud-candidate", weight=30, header=None) == weighted
    back = weighted_http_route(weighted, stable="fraud", candidate="fraud-candidate", weight=0, header=None)
    assert back[0]["backendRefs"] == [{"name": "fraud", "port": 80, "weight": 100}, {"name": "shadow", "port": 80, "weight": 0}]


def test_http_route_header_match_sends_matching_requests_to_the_candidate() -> None:
    weighted = weighted_http_route(RULES, stable="fraud", candidate="fraud-candidate", weight=10, header=HEADER)
    header_rule = weighted[0]
    assert header_rule == {
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/v1"},
                "headers": [{"type": "Exact", "name": "x-canary", "value": "always"}],
            }
        ],
        "backendRefs": [{"name": "fraud-candidate", "port": 80}],
    }
    assert len(weighted) == 3
    again = weighted_http_route(weighted, stable="fraud", candidate="fraud-candidate", weight=50, header=HEADER)
    assert len(again) == 3 and again[1]["backendRefs"][1]["weight"] == 50
    assert len(weighted_http_route(again, stable="fraud", candidate="fraud-candidate", weight=0, header=HEADER)) == 2


def test_virtual_service_weights_the_stable_host_and_matches_the_header() -> None:
    http = [
        {
            "match": [{"uri": {"prefix": "/v1"}}],
            "route": [{"destination": {"host": "fraud.ml.svc.cluster.local", "port": {"number": 80}}}],
        }
    ]
    weighted = weighted_virtual_service(http, stable="fraud", candidate="fraud-candidate", weight=25, header=HEADER)
    assert weighted[0] == {
        "match": [{"uri": {"prefix": "/v1"}, "headers": {"x-canary": {"exact": "always"}}}],
        "route": [{"destination": {"host": "fraud-candidate", "port": {"number": 80}}}],
    }
    assert weighted[1]["route"] == [
        {"destination": {"host": "fraud.ml.svc.cluster.local", "port": {"number": 80}}, "weight": 75},
        {"destination": {"host": "fraud-candidate", "port": {"number": 80}}, "weight": 25},
    ]
    back = weighted_virtual_service(weighted, stable="fraud", candidate="fraud-candidate", weight=0, header=HEADER)
    assert back == [{**http[0], "route": [{**http[0]["route"][0], "weight": 100}]}]
