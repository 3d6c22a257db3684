"""The operator's adapter to the MLflow model registry: versions, aliases, tags, training runs
and reference data profiles, through `mlflow.MlflowClient` and nothing else of MLflow.

Every failure comes out as one of three errors, so callers can tell a registry that is down
(`RegistryUnavailable`: retry, condition `Unknown`) from an answer that will not change by itself
(`RegistryNotFound`, `RegistryRejected`: tell the user). Calls block; async code runs them in the
MLflow threads of `sources.pools`.

Reference profiles are JSON artifacts of the version's training run (`modelpilot/profile.json`);
a version tag (`modelpilot.dev/profile`) points at the artifact. They are not stored as a tag:
a profile of many features easily exceeds the registry's tag limits and would crowd every
listing of the version in the MLflow UI, while an artifact is fetched only when asked for (at most
`MAX_PROFILE_BYTES`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from google.protobuf import json_format
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from .outbound import allowed

__all__ = [
    "HTTP_DEFAULTS",
    "PROFILE_ARTIFACT",
    "PROFILE_TAG",
    "MlflowRegistry",
    "ModelVersionInfo",
    "RegistryError",
    "RegistryNotFound",
    "RegistryRejected",
    "RegistryUnavailable",
    "RunInfo",
    "registry_for",
    "use_http_defaults",
]

#: MLflow's defaults (120 s timeout, 7 retries with exponential backoff) keep a call to a dead
#: server busy for minutes; these make an outage surface in seconds: a refused connection fails
#: at once, an unresponsive server after two 5 s attempts. mlflow reads them from the
#: environment at every request, so they apply process-wide; set in the operator's environment,
#: they win over these.
HTTP_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    }
)

PROFILE_ARTIFACT = "modelpilot/profile.json"
PROFILE_TAG = "modelpilot.dev/profile"
#: The largest profile artifact read (a profile of thousands of features is a few MiB).
MAX_PROFILE_BYTES = 16 * 2**20

_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
# 4xx codes that mean "try again later" rather than "this request is wrong".
_TRANSIENT_STATUSES = frozenset({408, 429, 499})


class RegistryError(Exception):
    """A registry call failed; see the three subclasses."""


class RegistryUnavailable(RegistryError):
    """The registry could not answer (network, timeout, 5xx, rate limit); retrying may help."""


class RegistryNotFound(RegistryError):
    """The registered model, version, alias, run or artifact asked for does not exist."""


class RegistryRejected(RegistryError):
    """The registry refused the request as invalid or unauthorised; retrying will not help."""


def _when(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC)


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ModelVersionInfo:
    """One version of a registered model, as the registry holds it."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    status: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str] = field(hash=False)
    created: datetime | None
    updated: datetime | None
    description: str | None

    @classmethod
    def from_mlflow(cls, mv: ModelVersion) -> ModelVersionInfo:
        return cls(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id or None,
            source=mv.source,
            status=str(mv.status),
            aliases=tuple(sorted(mv.aliases or ())),
            tags=_frozen(mv.tags),
            created=_when(mv.creation_timestamp),
            updated=_when(mv.last_updated_timestamp),
            description=mv.description or None,
        )


@dataclass(frozen=True)
class RunInfo:
    """A tracking run with its tags and the latest value of each metric."""

    run_id: str
    experiment_id: str
    name: str | None
    status: str
    artifact_uri: str
    started: datetime | None
    ended: datetime | None
    tags: Mapping[str, str] = field(hash=False)
    metrics: Mapping[str, float] = field(hash=False)

    @classmethod
    def from_mlflow(cls, run: Run) -> RunInfo:
        info = run.info
        return cls(
            run_id=info.run_id,
            experiment_id=str(info.experiment_id),
            name=info.run_name or None,
            status=str(info.status),
            artifact_uri=info.artifact_uri,
            started=_when(info.start_time),
            ended=_when(info.end_time),
            tags=_frozen(run.data.tags),
            metrics=_frozen({k: float(v) for k, v in run.data.metrics.items()}),
        )


def _raise_translated(what: str, exc: Exception) -> NoReturn:
    if isinstance(exc, MlflowException):
        code = exc.error_code
        status = exc.get_http_status_code()
        # A RestException's message already starts with its code.
        detail = exc.message if exc.message.startswith(code) else f"{code}: {exc.message}"
    else:
        # Artifact downloads surface requests' HTTPError (an OSError) with the response attached.
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None) or 0
        code = "RESOURCE_DOES_NOT_EXIST" if status == 404 else ""
        detail = f"{type(exc).__name__}: {exc}"
    if code in _NOT_FOUND_CODES:
        raise RegistryNotFound(f"{what}: not found ({detail})") from exc
    if 400 <= status < 500 and status not in _TRANSIENT_STATUSES:
        raise RegistryRejected(f"{what}: rejected by MLflow ({detail})") from exc
    raise RegistryUnavailable(f"{what}: MLflow unavailable ({detail})") from exc


@contextmanager
def _asking(what: str) -> Iterator[None]:
    """Translate MLflow and network failures of the calls inside into `RegistryError`s.

    An answer MLflow's client cannot read (a proxy's HTML page, JSON of another shape) is
    unavailable too: retried, never believed. Anything else (TypeError, AttributeError...) is a
    bug here and propagates unchanged.
    """
    try:
        yield
    except (MlflowException, OSError) as exc:
        _raise_translated(what, exc)
    except (ValueError, json_format.Error) as exc:  # no JSON, or JSON of another shape
        raise RegistryUnavailable(f"{what}: the tracking URL answered something that is no MLflow answer ({exc})") from exc


def _quoted(value: str) -> str:
    # MLflow's filter grammar has no escape for quotes inside a quoted value.
    if "'" in value or "`" in value:
        raise RegistryRejected(f"an MLflow search filter cannot quote {value!r}: it holds a quote or a backtick")
    return value


class MlflowRegistry:
    """The model registry (and its tracking server) at `tracking_uri`."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def __repr__(self) -> str:
        return f"MlflowRegistry({self.tracking_uri!r})"

    # -- versions and aliases -------------------------------------------------------------

    def get_version(self, model: str, version: str) -> ModelVersionInfo:
        with _asking(f"get version {version} of model {model!r}"):
            return ModelVersionInfo.from_mlflow(self._client.get_model_version(model, str(version)))

    def resolve_alias(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version `alias` points to; None when the model exists but the alias is unset.

        Reads the model's alias map rather than asking for the alias directly: MLflow answers
        an unset alias with INVALID_PARAMETER_VALUE, indistinguishable from a malformed request.
        """
        version = self._alias_target(model, alias, f"resolve alias {alias!r} of model {model!r}")
        return None if version is None else self.get_version(model, version)

    def set_alias(self, model: str, alias: str, version: str) -> str | None:
        """Point `alias` at `version`; returns the version it pointed to before, or None.

        Not atomic: a concurrent writer between the read and the write is not detected.
        """
        what = f"set alias {alias!r} of model {model!r} to version {version}"
        previous = self._alias_target(model, alias, what)
        with _asking(what):
            self._client.set_registered_model_alias(model, alias, str(version))
        return previous

    def delete_alias(self, model: str, alias: str) -> str | None:
        """Remove `alias`; returns the version it pointed to, or None when it was not set."""
        what = f"delete alias {alias!r} of model {model!r}"
        previous = self._alias_target(model, alias, what)
        if previous is not None:
            with _asking(what):
                self._client.delete_registered_model_alias(model, alias)
        return previous

    def tag_version(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        with _asking(f"tag version {version} of model {model!r}"):
            for key, value in tags.items():
                self._client.set_model_version_tag(model, str(version), key, str(value))

    def register(
        self,
        model: str,
        run_id: str,
        artifact_path: str,
        *,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> ModelVersionInfo:
        """Register the model logged at `artifact_path` of run `run_id` as a new version.

        Creates the registered model when it does not exist yet.
        """
        what = f"register {artifact_path!r} of run {run_id} as a version of model {model!r}"
        with _asking(what):
            run = self._client.get_run(run_id)
            # The run's real artifact location, not `runs:/...`: resolving that URI would go
            # through mlflow's global tracking URI instead of this client's.
            source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path.strip('/')}"
            try:
                self._client.create_registered_model(model)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            created = self._client.create_model_version(
                model,
                source,
                run_id=run_id,
                tags=dict(tags or {}),
                description=description,
                # Never poll for READY here; the caller reads `status` and comes back later.
                await_creation_for=0,
            )
        return ModelVersionInfo.from_mlflow(created)

    def list_versions(self, model: str) -> list[ModelVersionInfo]:
        """Every version of ``model``, oldest first; raises RegistryNotFound for an unknown model."""
        with _asking(f"list the versions of model {model!r}"):
            registered = self._client.get_registered_model(model)  # an unknown model is an error, not an empty list
            found = self._client.search_model_versions(f"name='{_quoted(model)}'")
        # Search results carry no aliases; the registered model knows them all.
        aliases: dict[str, list[str]] = {}
        for alias, version in (registered.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        return [
            dataclasses.replace(ModelVersionInfo.from_mlflow(v), aliases=tuple(sorted(aliases.get(str(v.version), ()))))
            for v in sorted(found, key=lambda v: int(v.version))
        ]

    def find_version_by_run(self, model: str, run_id: str) -> ModelVersionInfo | None:
        """The version of `model` registered from run `run_id`, if any: lets registration be
        repeated safely after a restart (look first, register only when nothing is found)."""
        with _asking(f"find the version of model {model!r} registered from run {run_id}"):
            found = self._client.search_model_versions(f"name='{_quoted(model)}' and run_id='{_quoted(run_id)}'")
        versions = sorted(found, key=lambda v: int(v.version))
        return ModelVersionInfo.from_mlflow(versions[0]) if versions else None

    # -- runs ------------------------------------------------------------------------------

    def find_runs_by_tag(self, experiment: str | None, key: str, value: str, *, max_results: int = 100) -> list[RunInfo]:
        """Active runs tagged `key=value`, newest first, in experiment `experiment` (by name)
        or in every experiment when it is None. An experiment that does not exist yet (the
        training job has not logged anything) holds no runs.
        """
        where = "all experiments" if experiment is None else f"experiment {experiment!r}"
        with _asking(f"find runs tagged {key}={value} in {where}"):
            if experiment is None:
                ids = self._all_experiment_ids()
            else:
                found = self._client.get_experiment_by_name(experiment)
                ids = [] if found is None else [found.experiment_id]
            if not ids:
                return []
            runs = self._client.search_runs(
                ids,
                filter_string=f"tags.`{_quoted(key)}` = '{_quoted(value)}'",
                max_results=max_results,
                order_by=["attributes.start_time DESC"],
            )
        return [RunInfo.from_mlflow(run) for run in runs]

    def get_run(self, run_id: str) -> RunInfo:
        with _asking(f"get run {run_id}"):
            return RunInfo.from_mlflow(self._client.get_run(run_id))

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of run `run_id`."""
        return dict(self.get_run(run_id).metrics)

    # -- reference profiles ---------------------------------------------------------------

    def log_profile(self, model: str, version: str, profile: Mapping[str, Any]) -> None:
        """Store `profile` (JSON-serialisable) with the version, as an artifact of its run.

        A run holds one profile: versions registered from the same run share their training
        data, hence their profile.
        """
        text = json.dumps(profile, sort_keys=True, allow_nan=False)
        run_id = self._run_of(model, version)
        with _asking(f"store the reference profile of version {version} of model {model!r}"):
            self._client.log_text(run_id, text, PROFILE_ARTIFACT)
            self._client.set_model_version_tag(model, str(version), PROFILE_TAG, PROFILE_ARTIFACT)

    def load_profile(self, model: str, version: str) -> dict[str, Any] | None:
        """The version's reference profile; None when none was stored."""
        info = self.get_version(model, version)
        artifact = info.tags.get(PROFILE_TAG)
        if artifact is None or info.run_id is None:
            return None
        what = f"load the reference profile of version {version} of model {model!r}"
        folder = artifact.rpartition("/")[0] or None
        with _asking(what):
            listed = {f.path: f.file_size for f in self._client.list_artifacts(info.run_id, folder)}
        if artifact not in listed:
            raise RegistryNotFound(f"{what}: the run has no artifact {artifact}")
        size = listed[artifact]
        # Checked before the download: the operator's /tmp is small, and a tenant's artifact is not.
        if size is None or size > MAX_PROFILE_BYTES:
            shown = "of unknown size" if size is None else f"of {size} bytes"
            raise RegistryRejected(f"{what}: {artifact} is {shown}; at most {MAX_PROFILE_BYTES} bytes are read")
        with tempfile.TemporaryDirectory(prefix="modelpilot-profile-") as tmp, _asking(what):
            text = Path(self._client.download_artifacts(info.run_id, artifact, tmp)).read_text()
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise RegistryRejected(f"{what}: {artifact} is not JSON ({exc})") from exc
        if not isinstance(loaded, dict):
            raise RegistryRejected(f"{what}: {artifact} holds a JSON {type(loaded).__name__}, not an object")
        return loaded

    # -- helpers ---------------------------------------------------------------------------

    def _alias_target(self, model: str, alias: str, what: str) -> str | None:
        with _asking(what):
            aliases = self._client.get_registered_model(model).aliases
        target = aliases.get(alias)
        return None if target is None else str(target)

    def _all_experiment_ids(self) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            page = self._client.search_experiments(max_results=1000, page_token=token)
            ids.extend(e.experiment_id for e in page)
            token = page.token
            if not token:
                return ids

    def _run_of(self, model: str, version: str) -> str:
        info = self.get_version(model, version)
        if info.run_id is None:
            raise RegistryRejected(
                f"version {version} of model {model!r} was not registered from a run, so it has "
                "nowhere to keep a reference profile; register it from its training run"
            )
        return info.run_id


@functools.lru_cache(maxsize=64)
def registry_for(tracking_uri: str) -> MlflowRegistry:
    """One registry client per tracking URI, shared by every resource that names it; raises
    RegistryRejected for a URI the operator's configuration does not allow."""
    if not allowed(tracking_uri):
        raise RegistryRejected(f"{tracking_uri} is under no URL prefix the operator allows")
    return MlflowRegistry(tracking_uri)


def use_http_defaults() -> None:
    """Put HTTP_DEFAULTS into the process environment where nothing else is set there.

    Called once by the programs that talk to MLflow (the operator, the CLI): the environment
    belongs to the process, not to a client object.
    """
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
