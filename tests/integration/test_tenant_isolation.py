"""One tenant's Prometheus that accepts connections and never answers does not delay another
tenant's rollback: the delay is measured, alone and beside the stalled tenant, and printed."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import yaml

from modelpilot.reconcile.pod_policy import OPT_IN_LABEL
from tests.integration.conftest import NAMESPACE_PREFIX
from tests.support.kube import Cluster, OperatorProcess, wait_for
from tests.support.manifests import drift_monitor

STALLED_MONITORS = 12


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A TCP server that accepts every connection and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for connection in held:
        connection.close()
    listener.close()


@pytest.fixture
def stalled_namespace(operator: OperatorProcess) -> Iterator[str]:
    name = f"{NAMESPACE_PREFIX}stalled-{uuid.uuid4().hex[:5]}"
    operator.cluster.kubectl("create", "namespace", name)
    yield name
    operator.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def aborted_release(cluster: Cluster, namespace: str, name: str, prometheus: str) -> float:
    """Seconds from applying a release with spec.abort to its RolledBack status."""
    stable = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-stable", "labels": {OPT_IN_LABEL: "true"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "s", "image": "s:1"}]}},
        },
    }
    release = {
        "apiVersion": "modelpilot.dev/v1alpha1",
        "kind": "CanaryRelease",
        "metadata": {"name": name},
        "spec": {
            "model": name,
            "target": {"deployment": f"{name}-stable", "version": "1"},
            "candidate": {"modelVersion": "2"},
            "stepWeights": [50, 100],
            "analysis": {"prometheus": {"url": prometheus}},
            "abort": True,
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(stable))
    started = time.monotonic()
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(release))
    wait_for(
        lambda: cluster.get("canaryreleases.modelpilot.dev", name, namespace).get("status", {}).get("phase") == "RolledBack",
        timeout=120,
        interval=0.1,
        what=f"release {name} to roll back",
    )
    return time.monotonic() - started


def test_a_stalled_tenant_does_not_delay_another_tenants_rollback(
    operator: OperatorProcess,
    namespace: str,
    stalled_namespace: str,
    blackhole: str,
    record_property: Callable[[str, object], None],
) -> None:
    cluster = operator.cluster
    alone = aborted_release(cluster, namespace, "alone", blackhole)

    for i in range(STALLED_MONITORS):
        monitor = drift_monitor(blackhole, name=f"stalled-{i}", interval="10s")
        # Each tick waits on about ten queries, four at a time in this namespace's share: it
        # ends after a few timeouts, long after the rollback below.
        monitor["spec"]["prometheus"]["timeout"] = "10s"
        cluster.kubectl("apply", "-n", stalled_namespace, "-f", "-", input=yaml.safe_dump(monitor))
    # Their first ticks start at once and wait on the server that never answers.
    time.sleep(3)
    beside = aborted_release(cluster, namespace, "beside", blackhole)

    record_property("rollback_alone_seconds", round(alone, 2))
    record_property("rollback_beside_stalled_seconds", round(beside, 2))
    print(
        f"\nrollback of a release with spec.abort: {alone:.2f}s alone, {beside:.2f}s beside a tenant whose "
        f"{STALLED_MONITORS} monitors wait on a Prometheus that never answers (release interval 2s)"
    )
    # The stalled tenant's monitors were still waiting when the rollback was written ...
    assert (operator.metric("modelpilot_resource_ticks_total", kind="ModelMonitor", namespace=stalled_namespace) or 0) == 0
    # ... and they were ticking all along: their first ticks end once the timeout cuts them off.
    ended = wait_for(
        lambda: operator.metric("modelpilot_resource_ticks_total", kind="ModelMonitor", namespace=stalled_namespace),
        timeout=120,
        what="the stalled tenant's first ticks to end",
    )
    assert ended >= 1
