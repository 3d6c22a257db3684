"""Training pod templates and the field the pod policy must name for each (None: allowed).

Both enforcers judge these: the operator's PodPolicy (unit tests) and the shipped
ValidatingAdmissionPolicy on the real API server (integration tests), so the two cannot drift
apart unnoticed."""

from __future__ import annotations

from typing import Any

ALLOWED_ACCOUNTS = ("default", "trainer")


def _pod(**fields: Any) -> dict[str, Any]:
    container = {"name": "train", "image": "trainer:1", **fields.pop("container", {})}
    return {"containers": [container], **fields}


#: (name, pod spec, the path below the pod spec the policy names, or None when allowed)
POD_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("plain", _pod(), None),
    ("allowed account", _pod(serviceAccountName="trainer"), None),
    ("baseline capability", _pod(container={"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}), None),
    ("unprivileged said plainly", _pod(hostNetwork=False, container={"securityContext": {"privileged": False}}), None),
    ("other account", _pod(serviceAccountName="deployer"), "serviceAccountName"),
    ("deprecated account field", _pod(serviceAccount="deployer"), "serviceAccount"),
    ("host network", _pod(hostNetwork=True), "hostNetwork"),
    ("host pid", _pod(hostPID=True), "hostPID"),
    ("host ipc", _pod(hostIPC=True), "hostIPC"),
    (
        "host path",
        _pod(volumes=[{"name": "data", "emptyDir": {}}, {"name": "root", "hostPath": {"path": "/"}}]),
        "volumes[1].hostPath",
    ),
    ("privileged", _pod(container={"securityContext": {"privileged": True}}), "containers[0].securityContext.privileged"),
    (
        "privileged init container",
        _pod(initContainers=[{"name": "setup", "image": "busybox", "securityContext": {"privileged": True}}]),
        "initContainers[0].securityContext.privileged",
    ),
    (
        "extra capability",
        _pod(container={"securityContext": {"capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}}}),
        "containers[0].securityContext.capabilities.add",
    ),
    ("host port", _pod(container={"ports": [{"containerPort": 80, "hostPort": 80}]}), "containers[0].ports[0].hostPort"),
    (
        "windows host process",
        _pod(securityContext={"windowsOptions": {"hostProcess": True}}),
        "securityContext.windowsOptions.hostProcess",
    ),
]
