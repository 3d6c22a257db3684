"""Reads and writes of the objects a ModelMonitor owns (its PrometheusRule, its dashboards), and
the reads that tell whether a Prometheus loads its rules.

Which kinds the cluster serves and which Prometheus objects exist change rarely and are the same
for every monitor: they are read at most once a minute per process, not once per evaluation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import kubernetes

from modelpilot.reconcile.monitor.owned import (
    ApplyObject,
    DeleteObject,
    OwnedAction,
    OwnedKind,
    OwnedView,
    PrometheusView,
    RuleAudience,
)

from .kubernetes import KubeError, ObjectMissing, api_client, kube_call
from .pools import KUBERNETES

__all__ = ["FIELD_MANAGER", "apply_owned", "observe_owned", "rule_audience"]

FIELD_MANAGER = "modelpilot"
#: Seconds a cluster-wide read (served kinds, Prometheus objects, namespace labels) is reused.
CACHE_SECONDS = 30.0

T = TypeVar("T")


class _TimedCache:
    """Answers of cluster-wide reads, reused for CACHE_SECONDS; errors are not kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, read: Callable[[], T]) -> T:
        with self._lock:
            kept = self._answers.get(key)
        if kept is not None and time.monotonic() - kept[0] < CACHE_SECONDS:
            answer: T = kept[1]
            return answer
        answer = read()
        with self._lock:
            self._answers[key] = (time.monotonic(), answer)
        return answer


_CACHE = _TimedCache()
# Why the last write of an object failed, by (namespace, kind, name): the next evaluation says so.
_APPLY_ERRORS: dict[tuple[str, str, str], str] = {}


def _custom() -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client())


def _core() -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client())


def _served(kind: OwnedKind) -> bool:
    """Whether the API server serves ``kind`` (its CRD is installed); raises a KubeError."""
    if not kind.group:
        return True  # core kinds are always served

    def read() -> bool:
        resources = kube_call(_custom().get_api_resources, kind.group, kind.version, missing_ok=True)
        return resources is not None and any(r.name == kind.plural for r in resources.resources)

    return _CACHE.get(("served", kind.api_version, kind.plural), read)


def _read(kind: OwnedKind, namespace: str, name: str) -> dict[str, Any] | None:
    if not kind.group:
        response = kube_call(_core().read_namespaced_config_map, name, namespace, _preload_content=False, missing_ok=True)
    else:
        response = kube_call(
            _custom().get_namespaced_custom_object,
            kind.group,
            kind.version,
            namespace,
            kind.plural,
            name,
            _preload_content=False,
            missing_ok=True,
        )
    if response is None:
        return None
    body: dict[str, Any] = json.loads(response.data)
    return body


def _view(kind: OwnedKind, namespace: str, name: str, hash_annotation: str) -> OwnedView:
    try:
        if not _served(kind):
            return OwnedView(served=False)
        body = _read(kind, namespace, name)
    except KubeError as err:
        return OwnedView(served=None, error=str(err))
    error = _APPLY_ERRORS.get((namespace, kind.kind, name))
    if body is None:
        return OwnedView(served=True, error=error)
    annotations = body.get("metadata", {}).get("annotations") or {}
    return OwnedView(served=True, hash=annotations.get(hash_annotation), exists=True, error=error)


async def observe_owned(
    namespace: str, kinds: Iterable[tuple[OwnedKind, str]], hash_annotation: str
) -> dict[OwnedKind, OwnedView]:
    """What the cluster holds of each (kind, name) a monitor owns or may own."""
    return {kind: await KUBERNETES.run(namespace, _view, kind, namespace, name, hash_annotation) for kind, name in kinds}


def _prometheuses() -> list[PrometheusView]:
    def read() -> list[PrometheusView]:
        if not _served(_PROMETHEUS):
            return []
        listed = kube_call(_custom().list_cluster_custom_object, "monitoring.coreos.com", "v1", "prometheuses")
        return [
            PrometheusView(
                namespace=item["metadata"]["namespace"],
                name=item["metadata"]["name"],
                rule_selector=(item.get("spec") or {}).get("ruleSelector"),
                rule_namespace_selector=(item.get("spec") or {}).get("ruleNamespaceSelector"),
            )
            for item in listed.get("items", [])
        ]

    return _CACHE.get("prometheuses", read)


_PROMETHEUS = OwnedKind("monitoring.coreos.com/v1", "Prometheus", "prometheuses", "")


def _namespace_labels(namespace: str) -> dict[str, str]:
    def read() -> dict[str, str]:
        labels: dict[str, str] = kube_call(_core().read_namespace, namespace).metadata.labels or {}
        return labels

    return _CACHE.get(("namespace", namespace), read)


async def rule_audience(namespace: str) -> RuleAudience:
    """The Prometheus objects that could load a rule of ``namespace``, where they can be read."""
    try:
        prometheuses: Sequence[PrometheusView] = await KUBERNETES.run(namespace, _prometheuses)
        labels = await KUBERNETES.run(namespace, _namespace_labels, namespace) if prometheuses else {}
    except KubeError as err:
        return RuleAudience(prometheuses=None, error=str(err))
    return RuleAudience(prometheuses=prometheuses, namespace_labels=labels)


def _apply(kind: OwnedKind, body: Mapping[str, Any]) -> None:
    """Server-side apply: idempotent, and only the fields in ``body`` become the operator's."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    options: dict[str, Any] = {
        "field_manager": FIELD_MANAGER,
        "force": True,
        "_content_type": "application/apply-patch+yaml",
        "_preload_content": False,
    }
    if not kind.group:
        kube_call(_core().patch_namespaced_config_map, name, namespace, dict(body), **options)
    else:
        kube_call(
            _custom().patch_namespaced_custom_object,
            kind.group,
            kind.version,
            namespace,
            kind.plural,
            name,
            dict(body),
            **options,
        )


def _delete(kind: OwnedKind, namespace: str, name: str) -> None:
    if not kind.group:
        kube_call(_core().delete_namespaced_config_map, name, namespace, missing_ok=True)
    else:
        kube_call(
            _custom().delete_namespaced_custom_object, kind.group, kind.version, namespace, kind.plural, name, missing_ok=True
        )


async def apply_owned(namespace: str, actions: Sequence[OwnedAction]) -> list[str]:
    """Make each write; a failure is kept for the next evaluation to report, and returned."""
    failures = []
    for action in actions:
        write: Callable[..., None]
        args: tuple[Any, ...]
        if isinstance(action, ApplyObject):
            kind, name, write, args = action.kind, action.body["metadata"]["name"], _apply, (action.kind, action.body)
        else:
            assert isinstance(action, DeleteObject)
            kind, name, write, args = action.kind, action.name, _delete, (action.kind, action.namespace, action.name)
        key = (namespace, kind.kind, name)
        try:
            await KUBERNETES.run(namespace, write, *args)
        except ObjectMissing:
            # The kind went away between the read and the write (its CRD was removed).
            _APPLY_ERRORS[key] = f"the {kind.kind} API is not served"
            failures.append(f"{kind.kind} {name}: not served")
        except KubeError as err:
            _APPLY_ERRORS[key] = str(err)
            failures.append(f"{kind.kind} {name}: {err}")
        else:
            _APPLY_ERRORS.pop(key, None)
    return failures
