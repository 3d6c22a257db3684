"""Reads (and, for the objects the operator owns, writes) Kubernetes objects with the official client.

The client is synchronous; callers on the event loop use the ``async`` wrappers, which run it in
a thread. Errors a user can fix (a missing object) are told apart from passing ones.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelpilot.api import GROUP, VERSION

__all__ = ["KubernetesReader", "NoCluster", "ObjectMissing", "api_client", "get_resource", "patch_resource"]


class NoCluster(Exception):
    """Neither an in-cluster configuration nor a kubeconfig."""


class ObjectMissing(Exception):
    """The object does not exist (404)."""


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
        """(ready, desired) replicas of a Deployment; raises ObjectMissing or ApiException."""
        deployment = await asyncio.to_thread(_missing_as_error, self._apps.read_namespaced_deployment, name, namespace)
        desired = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        return int(deployment.status.ready_replicas or 0), int(desired)

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        secret = await asyncio.to_thread(_missing_as_error, self._core.read_namespaced_secret, name, namespace)
        data = secret.data or {}
        if key not in data:
            raise ObjectMissing(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()


def _missing_as_error(function: Any, name: str, namespace: str) -> Any:
    try:
        return function(name, namespace, _request_timeout=10)
    except ApiException as err:
        if err.status == 404:
            raise ObjectMissing(f"{namespace}/{name} not found") from None
        raise


def get_resource(plural: str, namespace: str, name: str) -> dict[str, Any]:
    """One of modelpilot's own resources as a body; raises ObjectMissing."""
    custom = kubernetes.client.CustomObjectsApi(api_client())
    return _missing_as_error(
        lambda n, ns, **kw: custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, n, **kw), name, namespace
    )


def patch_resource(plural: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of one of modelpilot's own resources (a CLI acting for the user)."""
    custom = kubernetes.client.CustomObjectsApi(api_client())
    return _missing_as_error(
        lambda n, ns, **kw: custom.patch_namespaced_custom_object(GROUP, VERSION, ns, plural, n, body, **kw), name, namespace
    )
