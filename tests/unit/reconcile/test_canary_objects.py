"""The candidate Deployment and Service built from the stable ones, without a cluster."""

from __future__ import annotations

from modelpilot.reconcile import ReleaseRef
from modelpilot.reconcile.canary import RESTART_ANNOTATION, build_candidate_deployment, build_candidate_service
from tests.support.canary_world import release_spec

REF = ReleaseRef("ml", "fraud-v4", "uid-1")
STABLE = {
    "metadata": {"name": "fraud", "namespace": "ml"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "fraud"}},
        "template": {
            "metadata": {"labels": {"app": "fraud", "team": "risk"}, "annotations": {RESTART_ANNOTATION: "t0", "keep": "me"}},
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": "fraud:1",
                        "args": ["--port", "8501"],
                        "env": [{"name": "MODEL_NAME", "value": "fraud"}, {"name": "LATENCY_MS", "value": "20"}],
                    },
                    {"name": "sidecar", "image": "proxy:1"},
                ]
            },
        },
    },
}
SERVICE = {"spec": {"selector": {"app": "fraud"}, "ports": [{"name": "http", "port": 80, "targetPort": 8501, "nodePort": 30080}]}}


def test_candidate_is_the_stable_template_with_the_overrides_and_our_labels() -> None:
    spec = release_spec(
        candidate={"modelVersion": "4", "image": "fraud:2", "args": ["--fast"], "env": [{"name": "LATENCY_MS", "value": "5"}]}
    )
    built = build_candidate_deployment(spec, STABLE, REF, replicas=1, version="4")
    assert built["metadata"]["name"] == "fraud-v4-candidate" and built["metadata"]["namespace"] == "ml"
    assert built["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "modelpilot.dev/v1alpha1",
            "kind": "CanaryRelease",
            "name": "fraud-v4",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    ours = {"modelpilot.dev/release": "fraud-v4", "modelpilot.dev/role": "candidate", "modelpilot.dev/version": "4"}
    assert built["metadata"]["labels"] == ours
    assert built["spec"]["replicas"] == 1
    # Behind the replicas router the stable Service must reach the candidate pods.
    assert built["spec"]["selector"] == {"matchLabels": {"app": "fraud", "modelpilot.dev/role": "candidate"}}
    template = built["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "fraud", "team": "risk", **ours}
    assert template["metadata"]["annotations"] == {"keep": "me"}  # the stable's restart marker is not copied
    server, sidecar = template["spec"]["containers"]
    assert server["image"] == "fraud:2" and server["args"] == ["--fast"]
    assert server["env"] == [
        {"name": "MODEL_NAME", "value": "fraud"},
        {"name": "MODEL_VERSION", "value": "4"},
        {"name": "LATENCY_MS", "value": "5"},
    ]
    assert sidecar == {"name": "sidecar", "image": "proxy:1"}
    assert STABLE["spec"]["template"]["spec"]["containers"][0]["image"] == "fraud:1"  # the input is left alone


def test_behind_a_mesh_router_candidate_pods_stay_out_of_the_stable_service() -> None:
    spec = release_spec(router={"type": "istio", "virtualService": {"name": "fraud"}})
    built = build_candidate_deployment(spec, STABLE, REF, replicas=3, version="4", stable_service_selector={"app": "fraud"})
    labels = built["spec"]["template"]["metadata"]["labels"]
    assert "app" not in labels and labels["team"] == "risk"
    assert built["spec"]["selector"] == {
        "matchLabels": {"modelpilot.dev/release": "fraud-v4", "modelpilot.dev/role": "candidate"}
    }
    service = build_candidate_service(spec, SERVICE, REF, version="4")
    assert service["metadata"]["name"] == "fraud-v4-candidate"
    assert service["spec"] == {
        "type": "ClusterIP",
        "ports": [{"name": "http", "port": 80, "targetPort": 8501}],
        "selector": {"modelpilot.dev/release": "fraud-v4", "modelpilot.dev/role": "candidate"},
    }
