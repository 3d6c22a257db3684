"""What the operator lets a tenant's resource run as a pod, and what a tenant's object must say
to be used by modelpilot at all.

A RetrainPolicy's training template becomes a Job in the tenant's namespace, run by the
operator's rights rather than the tenant's. The operator therefore refuses templates that ask
for more than a plain workload: a service account its configuration does not list, host
namespaces, host paths or ports, privileged containers, or capabilities beyond the Pod Security
baseline's list. The shipped ValidatingAdmissionPolicy (manifests/policy) says the same at
apply time; a test holds the two to one verdict.

A CanaryRelease runs the candidate with the stable Deployment's pod template (its service
account, its Secrets) and sends it production traffic, so only Deployments that opt in, with
the label below, may be canaried; Secrets opt in the same way before their value is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["BASELINE_CAPABILITIES", "OPT_IN_LABEL", "PodPolicy", "opted_in"]

OPT_IN_LABEL = "modelpilot.dev/opt-in"

# The capabilities the Pod Security Standards' baseline profile lets a container add.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def opted_in(labels: Mapping[str, str] | None) -> bool:
    """Whether an object's labels say it is meant for modelpilot."""
    return (labels or {}).get(OPT_IN_LABEL) == "true"


@dataclass(frozen=True)
class PodPolicy:
    """The operator's rules for the pods a resource makes (``modelpilot run
    --training-service-account``)."""

    training_service_accounts: frozenset[str] = frozenset({"default"})

    def violations(self, pod: Mapping[str, Any] | None, field: str) -> list[str]:
        """Each rule ``pod`` (a PodSpec found at ``field``) breaks, as ``field.path: why``."""
        return [f"{field}.{path}: {why}" for path, why in self._broken(pod or {})]

    def _broken(self, pod: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        for key in ("serviceAccountName", "serviceAccount"):
            account = pod.get(key)
            if account and account not in self.training_service_accounts:
                allowed = ", ".join(sorted(self.training_service_accounts)) or "none"
                yield key, f"service account {account!r} is not one the operator allows for training ({allowed})"
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key) is True:
                yield key, "host namespaces are not allowed"
        if _host_process(pod.get("securityContext")):
            yield "securityContext.windowsOptions.hostProcess", "host processes are not allowed"
        for index, volume in enumerate(_items(pod.get("volumes"))):
            if "hostPath" in volume:
                yield f"volumes[{index}].hostPath", "host paths are not allowed"
        for kind in CONTAINER_LISTS:
            for index, container in enumerate(_items(pod.get(kind))):
                yield from ((f"{kind}[{index}].{path}", why) for path, why in _container_broken(container))


def _container_broken(container: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    context = container.get("securityContext")
    context = context if isinstance(context, Mapping) else {}
    if context.get("privileged") is True:
        yield "securityContext.privileged", "privileged containers are not allowed"
    if _host_process(context):
        yield "securityContext.windowsOptions.hostProcess", "host processes are not allowed"
    capabilities = context.get("capabilities")
    added = capabilities.get("add") if isinstance(capabilities, Mapping) else None
    extra = sorted(str(c) for c in (added if isinstance(added, list) else []) if c not in BASELINE_CAPABILITIES)
    if extra:
        yield "securityContext.capabilities.add", f"capabilities beyond the baseline are not allowed: {', '.join(extra)}"
    for index, port in enumerate(_items(container.get("ports"))):
        if port.get("hostPort"):
            yield f"ports[{index}].hostPort", "host ports are not allowed"


def _host_process(context: Any) -> bool:
    options = context.get("windowsOptions") if isinstance(context, Mapping) else None
    return isinstance(options, Mapping) and options.get("hostProcess") is True


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
