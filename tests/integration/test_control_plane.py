"""The controllers the test control plane runs do what they do on a real cluster: ClusterRole
aggregation, garbage collection by ownerReferences, and namespace deletion."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import yaml

from tests.support.kube import Cluster, wait_for
from tests.support.manifests import drift_monitor

# Long enough for the garbage collector's first sync of every resource on a freshly started
# control plane on a busy machine; each wait ends as soon as its sign appears.
CONTROLLER_TIMEOUT = 90.0


def is_gone(cluster: Cluster, *args: str) -> bool:
    """Whether ``kubectl get ARGS`` answers NotFound (and not some other failure)."""
    result = cluster.kubectl("get", *args, "-o", "name", check=False)
    if result.returncode == 0:
        return False
    assert "NotFound" in result.stderr, result.stderr
    return True


@pytest.fixture
def view_aggregate(cluster: Cluster) -> Iterator[str]:
    """A ClusterRole labelled to aggregate into `view`, granting `get` on one named ConfigMap;
    yields that ConfigMap's name, which no other rule of `view` mentions."""
    name = f"aggregated-into-view-{uuid.uuid4().hex[:8]}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name], "verbs": ["get"]}],
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(role))
    yield name
    cluster.kubectl("delete", "clusterrole", name, "--ignore-not-found")


def test_a_clusterrole_labelled_aggregate_to_view_adds_its_rules_to_view(cluster: Cluster, view_aggregate: str) -> None:
    def aggregated_rule() -> dict[str, object] | None:
        view = json.loads(cluster.kubectl("get", "clusterrole", "view", "-o", "json").stdout)
        return next((rule for rule in view.get("rules") or [] if view_aggregate in rule.get("resourceNames", [])), None)

    rule = wait_for(aggregated_rule, timeout=CONTROLLER_TIMEOUT, what=f"view to aggregate {view_aggregate}")
    assert rule["verbs"] == ["get"]
    assert rule["resources"] == ["configmaps"]


def test_a_dependent_of_a_deleted_owner_is_garbage_collected(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner = cluster.get("configmap", "owner", namespace)
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}],
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(dependent))
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_for(
        lambda: is_gone(cluster, "configmap", "dependent", "-n", namespace),
        timeout=CONTROLLER_TIMEOUT,
        what="the dependent ConfigMap to be collected",
    )


def test_a_deleted_namespace_with_objects_in_it_goes_away(crds: Cluster, namespace: str) -> None:
    crds.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=key=value")
    crds.kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(drift_monitor("http://127.0.0.1:9090", name="left-behind"))
    )
    crds.kubectl("delete", "namespace", namespace, "--wait=false")
    wait_for(
        lambda: is_gone(crds, "namespace", namespace),
        timeout=CONTROLLER_TIMEOUT,
        what=f"namespace {namespace} to be deleted",
    )
