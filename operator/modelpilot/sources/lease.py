"""The Lease that says which replica of the operator acts (coordination.k8s.io/v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import kubernetes

from modelpilot.reconcile.leadership import LeaseRecord

from .kubernetes import Conflict, api_client, kube_call

__all__ = ["read_lease", "write_lease"]


LEASES = ("coordination.k8s.io", "v1")


def _api() -> kubernetes.client.CustomObjectsApi:
    # The generic client sends bodies as written: the typed one re-renders MicroTime values in a
    # form the API server refuses when their microseconds are zero.
    return kubernetes.client.CustomObjectsApi(api_client())


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def read_lease(namespace: str, name: str) -> tuple[LeaseRecord | None, str | None]:
    """The lease's record and resourceVersion; (None, None) when there is none yet."""
    lease = kube_call(_api().get_namespaced_custom_object, *LEASES, namespace, "leases", name, missing_ok=True)
    if lease is None:
        return None, None
    spec = lease.get("spec") or {}
    record = LeaseRecord(
        holder=spec.get("holderIdentity") or None,
        renewed=_time(spec.get("renewTime")),
        acquired=_time(spec.get("acquireTime")),
        duration_seconds=spec.get("leaseDurationSeconds") or 15,
        transitions=spec.get("leaseTransitions") or 0,
    )
    return record, lease["metadata"]["resourceVersion"]


def write_lease(namespace: str, name: str, record: LeaseRecord, resource_version: str | None) -> bool:
    """Create the lease, or replace it if still at ``resource_version``; False when another
    replica wrote first (it won this round)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "modelpilot"}}
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": record.duration_seconds,
            "acquireTime": _micro(record.acquired),
            "renewTime": _micro(record.renewed),
            "leaseTransitions": record.transitions,
        },
    }
    try:
        if resource_version is None:
            kube_call(_api().create_namespaced_custom_object, *LEASES, namespace, "leases", body)
        else:
            metadata["resourceVersion"] = resource_version
            kube_call(_api().replace_namespaced_custom_object, *LEASES, namespace, "leases", name, body)
    except Conflict:
        return False
    return True


def _micro(value: datetime | None) -> str | None:
    # MicroTime: RFC 3339 with microseconds, in UTC.
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
