"""The objects a CanaryRelease owns, built as plain manifests from the stable ones.

The candidate Deployment is the stable pod template with the candidate's overrides. Behind the
``replicas`` router its pods carry the stable pod labels too, so the stable Service sends them
their share; behind a mesh router they must not (the stable Service would then reach them
outside the weights), so they keep only the labels no stable selector uses, and get a Service
of their own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from modelpilot.api.canary import CanaryReleaseSpec

from ..owners import ReleaseRef
from .observations import RESTART_ANNOTATION
from .routes import candidate_name

__all__ = [
    "RELEASE_LABEL",
    "ROLE_LABEL",
    "VERSION_LABEL",
    "build_candidate_deployment",
    "build_candidate_service",
]

RELEASE_LABEL = "modelpilot.dev/release"
ROLE_LABEL = "modelpilot.dev/role"
VERSION_LABEL = "modelpilot.dev/version"
VERSION_ENV = "MODEL_VERSION"


def _own_labels(ref: ReleaseRef, version: str) -> dict[str, str]:
    return {RELEASE_LABEL: ref.name, ROLE_LABEL: "candidate", VERSION_LABEL: version}


def _metadata(name: str, ref: ReleaseRef, version: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": ref.namespace,
        "labels": _own_labels(ref, version),
        "ownerReferences": [ref.owner_reference()],
    }


def _selector(spec: CanaryReleaseSpec, stable: Mapping[str, Any], ref: ReleaseRef) -> dict[str, Any]:
    if spec.router.type == "replicas":
        selector = copy.deepcopy(dict(stable["spec"]["selector"]))
        selector["matchLabels"] = {**selector.get("matchLabels", {}), ROLE_LABEL: "candidate"}
        return selector
    return {"matchLabels": {RELEASE_LABEL: ref.name, ROLE_LABEL: "candidate"}}


def build_candidate_deployment(
    spec: CanaryReleaseSpec,
    stable: Mapping[str, Any],
    ref: ReleaseRef,
    *,
    replicas: int,
    version: str,
    stable_service_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The candidate Deployment ``<release>-candidate`` from the stable Deployment's body.

    The first container gets the candidate's image and args when set, and ``MODEL_VERSION`` (the
    `version` label the analysis queries) plus ``candidate.env`` over the stable env.
    """
    template = copy.deepcopy(dict(stable["spec"]["template"]))
    metadata = template.setdefault("metadata", {})
    labels = dict(metadata.get("labels") or {})
    if spec.router.type != "replicas":
        for key in {**(stable_service_selector or {}), **stable["spec"]["selector"].get("matchLabels", {})}:
            labels.pop(key, None)
    metadata["labels"] = {**labels, **_own_labels(ref, version)}
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != RESTART_ANNOTATION}
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)

    container = template["spec"]["containers"][0]
    overrides = {VERSION_ENV: version, **{e.name: e.value for e in spec.candidate.env}}
    kept = [e for e in container.get("env", []) if e.get("name") not in overrides]
    container["env"] = kept + [{"name": name, "value": value} for name, value in overrides.items()]
    if spec.candidate.image is not None:
        container["image"] = spec.candidate.image
    if spec.candidate.args is not None:
        container["args"] = list(spec.candidate.args)

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(candidate_name(ref.name), ref, version),
        "spec": {"replicas": replicas, "selector": _selector(spec, stable, ref), "template": template},
    }


def build_candidate_service(
    spec: CanaryReleaseSpec, stable_service: Mapping[str, Any], ref: ReleaseRef, *, version: str
) -> dict[str, Any]:
    """The candidate's Service for a mesh router: the stable Service's ports, the candidate's pods."""
    ports = [{k: v for k, v in port.items() if k != "nodePort"} for port in stable_service.get("spec", {}).get("ports", [])]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(candidate_name(ref.name), ref, version),
        "spec": {"type": "ClusterIP", "ports": ports, "selector": {RELEASE_LABEL: ref.name, ROLE_LABEL: "candidate"}},
    }
