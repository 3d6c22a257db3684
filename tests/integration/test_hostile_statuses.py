"""The statuses decided from hostile Prometheus answers, written to the real API server: it takes
every one (a sample of the property-based examples, the same each run)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from modelpilot.api import GROUP, VERSION
from tests.support.kube import Cluster
from tests.unit.reconcile.test_hostile_answers import ANALYSIS, CANARY_STATUSES, MONITOR_STATUSES, SPEC

SAMPLE = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class Stored:
    """One ModelMonitor and one CanaryRelease on the API server whose status takes the patches."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.namespace = namespace
        self.api = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(str(cluster.kubeconfig)))

    def write(self, plural: str, name: str, status: dict[str, Any]) -> None:
        """A real status write, checked by the API server's schema, stored nowhere (dry run)."""
        self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, plural, name, {"status": status}, dry_run="All"
        )


@pytest.fixture(scope="module")
def stored(crds: Cluster) -> Iterator[Stored]:
    namespace = f"own-hostile-{uuid.uuid4().hex[:8]}"
    crds.kubectl("create", "namespace", namespace)
    monitor = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelMonitor", "metadata": {"name": "hostile"}}
    release = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CanaryRelease",
        "metadata": {"name": "hostile"},
        "spec": {
            "model": "m",
            "target": {"deployment": "m", "version": "1"},
            "candidate": {"modelVersion": "2"},
            "stepWeights": [50, 100],
            "analysis": ANALYSIS.to_body(),
        },
    }
    monitor["spec"] = SPEC.to_body()
    crds.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([monitor, release]))
    yield Stored(crds, namespace)
    crds.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@SAMPLE
@given(body=MONITOR_STATUSES)
def test_the_api_server_takes_a_monitors_status_decided_on_any_answer(stored: Stored, body: dict[str, Any]) -> None:
    stored.write("modelmonitors", "hostile", body)


@SAMPLE
@given(body=CANARY_STATUSES)
def test_the_api_server_takes_a_canary_check_judged_on_any_answer(stored: Stored, body: dict[str, Any]) -> None:
    stored.write("canaryreleases", "hostile", body)
