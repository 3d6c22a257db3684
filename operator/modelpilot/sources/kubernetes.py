"""Reads (and, for the objects the operator owns, writes) Kubernetes objects with the official client.

The client is synchronous; callers on the event loop use the ``async`` wrappers, which run it in
a thread. Errors a user can fix (a missing object) are told apart from passing ones.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from modelpilot.api import GROUP, VERSION
from modelpilot.reconcile.pod_policy import OPT_IN_LABEL, opted_in

from .pools import KUBERNETES

__all__ = [
    "REQUEST_TIMEOUT",
    "SecretUnusable",
    "ApiUnavailable",
    "Conflict",
    "Forbidden",
    "KubeError",
    "KubernetesReader",
    "NoCluster",
    "ObjectMissing",
    "api_client",
    "get_resource",
    "kube_call",
    "list_resources",
    "patch_resource",
    "post_event",
    "secret_text",
    "write_status",
]


class NoCluster(Exception):
    """Neither an in-cluster configuration nor a kubeconfig."""


class KubeError(Exception):
    """An API request that failed; ``reason`` is a CamelCase word a condition can carry."""

    reason = "APIError"


class ObjectMissing(KubeError):
    """The object does not exist (404)."""

    reason = "NotFound"


class Conflict(KubeError):
    """The object exists already, or changed since it was read (409)."""

    reason = "Conflict"


class Forbidden(KubeError):
    """The operator's service account may not do this (403)."""

    reason = "Forbidden"


class ApiUnavailable(KubeError):
    """The API server did not answer in time, or answered 5xx/429: retrying may help."""

    reason = "APIUnavailable"


#: Seconds one API request may take before it counts as unavailable.
REQUEST_TIMEOUT = 10
_BY_STATUS: dict[int, type[KubeError]] = {404: ObjectMissing, 409: Conflict, 403: Forbidden}


def kube_call(function: Any, *args: Any, missing_ok: bool = False, exists_ok: bool = False, **kwargs: Any) -> Any:
    """One client call with the operator's one error policy: a bounded time, 404/409/403 and an
    unavailable server told apart as KubeError subclasses. ``missing_ok``: a 404 answers None;
    ``exists_ok``: a 409 answers None (a create repeated after a restart)."""
    try:
        return function(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    except ApiException as err:
        if (err.status == 404 and missing_ok) or (err.status == 409 and exists_ok):
            return None
        error = _BY_STATUS.get(err.status or 0) or (
            ApiUnavailable if (err.status or 500) >= 500 or err.status == 429 else KubeError
        )
        raise error(f"{err.status} {err.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise ApiUnavailable(f"the API server did not answer: {err}") from None


@functools.lru_cache(maxsize=1)
def api_client() -> kubernetes.client.ApiClient:
    """One client per process: in-cluster configuration, else the kubeconfig (KUBECONFIG)."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        try:
            kubernetes.config.load_kube_config()
        except (kubernetes.config.ConfigException, OSError) as err:
            raise NoCluster(f"no Kubernetes configuration: set KUBECONFIG or run inside a cluster ({err})") from None
    return kubernetes.client.ApiClient()


class KubernetesReader:
    """The reads a ModelMonitor evaluation needs."""

    def __init__(self, client: kubernetes.client.ApiClient | None = None):
        self._client = client

    @property
    def _apps(self) -> kubernetes.client.AppsV1Api:
        return kubernetes.client.AppsV1Api(self._client or api_client())

    @property
    def _core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self._client or api_client())

    async def deployment_replicas(self, namespace: str, name: str) -> tuple[int, int]:
        """(ready, desired) replicas of a Deployment; raises a KubeError."""
        deployment = await KUBERNETES.run(namespace, kube_call, self._apps.read_namespaced_deployment, name, namespace)
        desired = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        return int(deployment.status.ready_replicas or 0), int(desired)

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        """The text under ``key`` of a Secret that opted in (see ``secret_text``)."""
        secret = await KUBERNETES.run(namespace, kube_call, self._core.read_namespaced_secret, name, namespace)
        return secret_text(f"{namespace}/{name}", secret.metadata.labels or {}, secret.data or {}, key)


class SecretUnusable(KubeError):
    """A Secret that did not opt in, lacks the key, or holds no text there."""

    reason = "SecretUnusable"


def secret_text(name: str, labels: Mapping[str, str], data: Mapping[str, str], key: str) -> str:
    """The text under ``key`` of Secret ``name`` (its base64 ``data``); raises SecretUnusable,
    whose message never quotes a value."""
    # Naming a Secret in a spec is not enough, or anyone who may create a ModelMonitor could read
    # any Secret of the namespace by sending it to a URL of their choosing.
    if not opted_in(labels):
        raise SecretUnusable(f"Secret {name} is not labelled {OPT_IN_LABEL}=true; label it to let modelpilot use it")
    if key not in data:
        raise SecretUnusable(f"Secret {name} has no key {key!r}")
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise SecretUnusable(f"Secret {name} holds no UTF-8 text under {key!r}") from None


def get_resource(plural: str, namespace: str, name: str) -> dict[str, Any]:
    """One of modelpilot's own resources as a body; raises ObjectMissing."""
    custom = kubernetes.client.CustomObjectsApi(api_client())
    return kube_call(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name)


def list_resources(plural: str, namespace: str) -> list[dict[str, Any]]:
    """modelpilot's own resources of one kind in a namespace, as bodies."""
    custom = kubernetes.client.CustomObjectsApi(api_client())
    items: list[dict[str, Any]] = kube_call(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural)["items"]
    return items


def patch_resource(plural: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of one of modelpilot's own resources (a CLI acting for the user)."""
    custom = kubernetes.client.CustomObjectsApi(api_client())
    return kube_call(custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, plural, name, body)


def write_status(plural: str, namespace: str, name: str, resource_version: str, patch: dict[str, Any]) -> bool:
    """Merge ``patch`` into a resource's status if it is still at ``resource_version``.

    False when someone wrote in between: the tick was decided on a stale view, and the next one
    decides again. This keeps two ticks (or two operators) from both making a transition.
    """
    custom = kubernetes.client.CustomObjectsApi(api_client())
    body = {"metadata": {"resourceVersion": resource_version}, "status": patch}
    try:
        kube_call(
            custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            body,
            _content_type="application/merge-patch+json",
        )
    except Conflict:
        return False
    return True


#: Who posts the Events, as `kubectl describe` shows in its From column.
EVENT_SOURCE = "modelpilot"


def post_event(involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """A core/v1 Event about the object ``involved`` (a body with apiVersion, kind, metadata)."""
    meta = involved.get("metadata") or {}
    now = datetime.now(UTC).isoformat()
    event = {
        "metadata": {"generateName": f"{meta.get('name', 'modelpilot')}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": EVENT_SOURCE},
        "reportingComponent": EVENT_SOURCE,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    kube_call(kubernetes.client.CoreV1Api(api_client()).create_namespaced_event, meta.get("namespace"), event)
