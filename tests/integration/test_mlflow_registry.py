"""The MLflow registry adapter against a real MLflow tracking server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from modelpilot.sources import mlflow as mlflow_source
from modelpilot.sources.mlflow import (
    MlflowRegistry,
    RegistryNotFound,
    RegistryRejected,
    RegistryUnavailable,
)
from tests.support.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration

RETRAIN_TAG = "modelpilot.dev/retrain-run"


@pytest.fixture(scope="module")
def registry(mlflow_server: MlflowServer) -> MlflowRegistry:
    return MlflowRegistry(mlflow_server.url)


@pytest.fixture(scope="module")
def client(mlflow_server: MlflowServer) -> MlflowClient:
    """A training job's view: it logs runs; the operator only reads and registers them."""
    return MlflowClient(tracking_uri=mlflow_server.url)


def log_training_run(client: MlflowClient, experiment: str, *, tags: dict[str, str] | None = None, accuracy: float = 0.9) -> str:
    """A finished run with a metric and a tiny model artifact (mlflow-skinny has no flavours)."""
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, tags=tags or {})
    run_id = run.info.run_id
    client.log_param(run_id, "max_depth", "4")
    client.log_metric(run_id, "accuracy", accuracy)
    client.log_metric(run_id, "f1", accuracy - 0.05)
    client.log_dict(run_id, {"weights": [0.1, -0.2, 0.3], "bias": 0.05}, "model/model.json")
    client.set_terminated(run_id)
    return run_id


def test_registering_a_run_creates_the_model_and_a_ready_version(registry: MlflowRegistry, client: MlflowClient) -> None:
    run_id = log_training_run(client, "churn-training")

    version = registry.register("churn", run_id, "model", tags={"stage": "candidate"})

    assert version.name == "churn"
    assert version.version == "1"
    assert version.run_id == run_id
    assert version.status == "READY"
    assert version.source is not None and version.source.endswith(f"{run_id}/artifacts/model")
    assert version.tags == {"stage": "candidate"}
    assert version.aliases == ()
    assert version.created is not None and version.created.tzinfo is not None
    assert registry.get_version("churn", "1") == version


def test_champion_alias_resolves_to_the_version_it_points_at(registry: MlflowRegistry, client: MlflowClient) -> None:
    registry.register("fraud", log_training_run(client, "fraud-training"), "model")
    assert registry.resolve_alias("fraud", "champion") is None

    assert registry.set_alias("fraud", "champion", "1") is None

    champion = registry.resolve_alias("fraud", "champion")
    assert champion is not None
    assert (champion.version, champion.aliases) == ("1", ("champion",))


def test_moving_champion_to_a_new_version_returns_the_previous_holder(registry: MlflowRegistry, client: MlflowClient) -> None:
    first = registry.register("ranker", log_training_run(client, "ranker-training"), "model")
    second = registry.register("ranker", log_training_run(client, "ranker-training"), "model")
    registry.set_alias("ranker", "champion", first.version)

    previous = registry.set_alias("ranker", "champion", second.version)

    assert previous == first.version
    champion = registry.resolve_alias("ranker", "champion")
    assert champion is not None and champion.version == second.version
    assert "champion" not in registry.get_version("ranker", first.version).aliases
    # Rolling back is the same call the other way round, and deleting reports what it removed.
    assert registry.set_alias("ranker", "champion", first.version) == second.version
    assert registry.delete_alias("ranker", "champion") == first.version
    assert registry.delete_alias("ranker", "champion") is None
    assert registry.resolve_alias("ranker", "champion") is None


def test_tagged_version_carries_the_tags(registry: MlflowRegistry, client: MlflowClient) -> None:
    version = registry.register("pricing", log_training_run(client, "pricing-training"), "model")

    registry.tag_version("pricing", version.version, {"modelpilot.dev/gate": "passed", "modelpilot.dev/canary": "ns/pricing"})

    tags = registry.get_version("pricing", version.version).tags
    assert tags["modelpilot.dev/gate"] == "passed"
    assert tags["modelpilot.dev/canary"] == "ns/pricing"


def test_training_run_is_found_by_the_tag_the_operator_set(registry: MlflowRegistry, client: MlflowClient) -> None:
    wanted = log_training_run(client, "search-training", tags={RETRAIN_TAG: "ns-a/policy/3"}, accuracy=0.93)
    log_training_run(client, "search-training", tags={RETRAIN_TAG: "ns-a/policy/2"})
    log_training_run(client, "other-training", tags={RETRAIN_TAG: "ns-a/policy/3"})

    in_experiment = registry.find_runs_by_tag("search-training", RETRAIN_TAG, "ns-a/policy/3")
    everywhere = registry.find_runs_by_tag(None, RETRAIN_TAG, "ns-a/policy/3")

    assert [run.run_id for run in in_experiment] == [wanted]
    assert len(everywhere) == 2 and wanted in {run.run_id for run in everywhere}
    assert in_experiment[0].tags[RETRAIN_TAG] == "ns-a/policy/3"
    assert in_experiment[0].status == "FINISHED"
    assert in_experiment[0].metrics["accuracy"] == pytest.approx(0.93)
    assert registry.run_metrics(wanted) == pytest.approx({"accuracy": 0.93, "f1": 0.88})
    # A job that has not logged yet has no experiment, hence no runs; not an error.
    assert registry.find_runs_by_tag("not-created-yet", RETRAIN_TAG, "ns-a/policy/3") == []


def test_reference_profile_round_trips_with_the_version(registry: MlflowRegistry, client: MlflowClient) -> None:
    version = registry.register("credit", log_training_run(client, "credit-training"), "model")
    assert registry.load_profile("credit", version.version) is None
    # Tens of KB, as for a model with a hundred features: too big to be a tag.
    profile = {
        "features": {f"feature_{i}": {"edges": [j / 10 for j in range(21)], "counts": list(range(20))} for i in range(100)},
        "rows": 50_000,
    }

    registry.log_profile("credit", version.version, profile)

    assert registry.load_profile("credit", version.version) == profile


def test_a_profile_over_the_size_limit_is_refused_before_it_is_fetched(
    registry: MlflowRegistry, client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = registry.register("bulky", log_training_run(client, "bulky-training"), "model")
    profile = {"features": {f"f{i}": {"edges": [0.5], "counts": [1, 2]} for i in range(100)}, "rows": 3}
    registry.log_profile("bulky", version.version, profile)
    size = len(json.dumps(profile))
    # The limit is configuration: lowered here so that a small artifact is over it.
    monkeypatch.setattr(mlflow_source, "MAX_PROFILE_BYTES", size // 2)
    with pytest.raises(RegistryRejected, match=rf"modelpilot/profile.json is of \d+ bytes; at most {size // 2} bytes"):
        registry.load_profile("bulky", version.version)


def test_missing_model_version_alias_target_or_run_is_not_found(registry: MlflowRegistry, client: MlflowClient) -> None:
    registry.register("known", log_training_run(client, "known-training"), "model")

    with pytest.raises(RegistryNotFound, match="'champion' of model 'unknown'"):
        registry.resolve_alias("unknown", "champion")
    with pytest.raises(RegistryNotFound, match="version 42"):
        registry.get_version("known", "42")
    with pytest.raises(RegistryNotFound):
        registry.set_alias("known", "champion", "42")
    with pytest.raises(RegistryNotFound):
        registry.run_metrics("0" * 32)
    with pytest.raises(RegistryNotFound):
        registry.load_profile("unknown", "1")


def test_invalid_request_is_rejected_not_unavailable(registry: MlflowRegistry, client: MlflowClient) -> None:
    registry.register("strict", log_training_run(client, "strict-training"), "model")

    # MLflow reserves `latest` and `v<N>` as alias names.
    with pytest.raises(RegistryRejected, match="reserved"):
        registry.set_alias("strict", "latest", "1")


def test_stopped_server_makes_the_registry_unavailable_at_once(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    with MlflowServer(tmp_path) as server:
        registry = MlflowRegistry(server.url)
        assert registry.find_runs_by_tag(None, RETRAIN_TAG, "any") == []
    # The server is gone now; the registry must say so rather than retry for minutes.

    began = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="resolve alias 'champion'"):
        registry.resolve_alias("churn", "champion")
    record_property("seconds_to_unavailable", round(time.monotonic() - began, 3))
