"""Two replicas of the operator on one Lease: the standby does nothing; when the leader is
killed during a training run, the standby takes over and the run finishes once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mlflow import MlflowClient

from tests.integration.test_retrain_policy import apply, champion, jobs, policy, status
from tests.support.kube import Cluster, OperatorProcess, wait_for
from tests.support.kubelet import JobKubelet
from tests.support.mlflow_server import MlflowServer

LEADING = "leading as "


def replica(cluster: Cluster, namespace: str, workdir: Path, name: str) -> OperatorProcess:
    election = ["--leader-election", f"--leader-election-namespace={namespace}"]
    return OperatorProcess(cluster, workdir, namespaces=[namespace], extra_args=election, name=name)


def leads(process: OperatorProcess) -> Callable[[], bool]:
    return lambda: LEADING in process.log_path.read_text(errors="replace")


def take_over(
    standby: OperatorProcess,
    end: Callable[[], None],
    record_property: Callable[[str, object], None],
    what: str,
) -> float:
    """End the leader with ``end`` (its kill or stop); the seconds until the standby leads,
    recorded and printed as ``what``."""
    end()
    ended = time.monotonic()
    wait_for(leads(standby), timeout=60, what="the standby to take over")
    seconds = time.monotonic() - ended
    record_property(f"{what.replace(' ', '_')}_seconds", round(seconds, 1))
    print(f"\n{what}: {seconds:.1f}s (lease duration 15s, retry 2s)")
    return seconds


def ticks(process: OperatorProcess, namespace: str) -> float:
    return process.metric("modelpilot_resource_ticks_total", kind="RetrainPolicy", namespace=namespace) or 0.0


def test_the_standby_does_nothing_and_takes_over_a_training_run_from_a_killed_leader(
    crds: Cluster,
    mlflow_server: MlflowServer,
    unwatched_namespace: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    model = f"fraud-ha-{uuid.uuid4().hex[:6]}"
    champion(mlflow_server.url, model, {"accuracy": 0.5, "f1": 0.4})
    manifest = policy("ha", model, mlflow_server.url, {"manual": {"request": "first"}})
    del manifest["spec"]["monitorRef"]
    with (
        replica(crds, unwatched_namespace, tmp_path, "first") as first,
        JobKubelet(crds, unwatched_namespace, tmp_path) as kubelet,
    ):
        wait_for(leads(first), timeout=60, what="the first replica to lead")
        with replica(crds, unwatched_namespace, tmp_path, "second") as second:
            kubelet.hold.clear()  # the training process ends, but its Job stays Active until released
            apply(crds, unwatched_namespace, manifest)
            wait_for(lambda: "ha-1-1" in kubelet.jobs and kubelet.jobs["ha-1-1"].output, timeout=90, what="the training process")
            wait_for(lambda: ticks(first, unwatched_namespace) >= 3, timeout=60, what="ticks of the leader")
            # The standby watched all along and ticked nothing.
            assert ticks(second, unwatched_namespace) == 0 and not leads(second)()

            take_over(second, first.kill, record_property, "failover after SIGKILL of the leader")

            wait_for(lambda: ticks(second, unwatched_namespace) >= 2, timeout=60, what="ticks of the new leader")
            assert status(crds, unwatched_namespace, "ha")["phase"] == "Training"
            kubelet.hold.set()
            done = wait_for(
                lambda: (s := status(crds, unwatched_namespace, "ha")).get("phase") == "Deploying" and s,
                timeout=120,
                what="Deploying",
            )
    # Exactly one Job, one run, one registered candidate with the challenger alias, one canary.
    assert jobs(crds, unwatched_namespace, "ha") == ["ha-1-1"]
    assert done["runs"] == 1
    versions = MlflowClient(tracking_uri=mlflow_server.url).search_model_versions(f"name='{model}'")
    assert len(versions) == 2  # the champion and the one candidate
    registered = MlflowClient(tracking_uri=mlflow_server.url).get_registered_model(model)
    assert registered.aliases["challenger"] == done["candidateVersion"]
    canaries = crds.kubectl("get", "canaryreleases", "-n", unwatched_namespace, "-o", "name").stdout.split()
    assert canaries == [f"canaryrelease.modelpilot.dev/ha-v{done['candidateVersion']}"]


def test_a_leader_that_stops_cleanly_hands_the_lease_over_at_once(
    crds: Cluster, unwatched_namespace: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    with replica(crds, unwatched_namespace, tmp_path, "first") as first:
        wait_for(leads(first), timeout=60, what="the first replica to lead")
        with replica(crds, unwatched_namespace, tmp_path, "second") as second:
            take_over(second, first.stop, record_property, "handover after SIGTERM of the leader")
    holder = crds.kubectl("get", "lease", "modelpilot", "-n", unwatched_namespace, "-o", "jsonpath={.spec.leaseTransitions}")
    assert holder.stdout == "1"
