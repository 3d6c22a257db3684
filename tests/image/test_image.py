"""The operator's image, as `make image` builds it (image/build.sh), runs as the operator.

The tests need no container runtime: they run the image's entrypoint the way one would, from
the image's root filesystem mounted by buildah and bound read-only in a mount namespace of its
own, with a tmpfs at /tmp (the Deployment's emptyDir), a PID namespace of its own, the image's
user and environment, and the service account's token where a pod finds it. The control plane
is always a local one: the operator logs in as a pod would, with an in-cluster configuration.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tomllib
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.controlplane import ControlPlane
from tests.support.kube import REPO, Cluster, apply_crds, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.ports import free_port
from tests.support.process import ServiceProcess, spawn, terminate
from tests.support.prometheus import PrometheusServer

UID = 65532
CONTAINER = "modelpilot-image-test"
# A compiler driver or the compiler proper, plain or versioned (gcc-12) or prefixed with a target.
COMPILER = re.compile(r"(^|-)(cc|gcc|c\+\+|g\+\+|clang|clang\+\+|cc1|cc1plus)(-[0-9.]+)?$")

# Runs as root in the new mount and PID namespaces, then becomes the command in "$@".
SETUP = r"""
set -eu
root=$1 account=$2
shift 2
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755 tmpfs "$root/dev"
for device in null zero random urandom; do
    touch "$root/dev/$device"
    mount --bind "/dev/$device" "$root/dev/$device"
done
# Where a pod finds its service account: /var/run/secrets/... (/var/run is /run in the image).
mount -t tmpfs -o mode=755 tmpfs "$root/run"
secrets=$root/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$secrets"
cp "$account"/* "$secrets"/
chmod 644 "$secrets"/*
exec "$@"
"""


@dataclass(frozen=True)
class Image:
    id: str
    config: dict[str, Any]  # the OCI image configuration: Entrypoint, Cmd, Env, User, Labels


def host_tool(name: str) -> str:
    """A program of this machine, by its path: what runs after `env -i` has the image's PATH."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not on the PATH")
    return path


def buildah(*args: str, check: bool = True) -> str:
    """What `buildah ARGS` prints."""
    result = subprocess.run(["buildah", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def deployed_image() -> str:
    """The image the shipped Deployment runs."""
    deployment = yaml.safe_load((REPO / "manifests" / "base" / "deployment.yaml").read_text())
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


class ImageProcess(ServiceProcess):
    """The image's entrypoint with ``args``, run from its mounted ``root`` as its user, with its
    environment and ``env``, and the files of ``account`` as the pod's service account."""

    def __init__(self, image: Image, root: Path, account: Path, args: Sequence[str], env: dict[str, str], log_path: Path):
        environment = [*image.config["Env"], *(f"{name}={value}" for name, value in env.items())]
        self.command = [
            *(host_tool("unshare"), "--mount", "--pid", "--fork"),
            *(host_tool("sh"), "-c", SETUP, "setup", str(root), str(account)),
            *(host_tool("env"), "-i", *environment),
            *(host_tool("chroot"), f"--userspec={image.config['User']}", str(root)),
            *image.config["Entrypoint"],
            *args,
        ]
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ImageProcess:
        with self.log_path.open("ab") as log:
            self._process = spawn(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        terminate(process, 20)

    def check_running(self) -> None:
        if self._process is None or self._process.poll() is not None:
            code = None if self._process is None else self._process.returncode
            raise AssertionError(f"the image's entrypoint exited with {code}:\n{self.log_tail()}")

    def entrypoint_pids(self) -> list[int]:
        """The processes started from the image (the group less `unshare` itself)."""
        assert self._process is not None
        group = self._process.pid
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == group:
                continue
            try:
                # Fields after the command's closing parenthesis: state, ppid, pgrp, ...
                pgrp = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
            except (OSError, IndexError):
                continue
            if pgrp == group:
                found.append(int(entry.name))
        return found


def process_uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uid of a process."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:"))
    return {int(uid) for uid in line.split()[1:]}


def mount_options(pid: int) -> dict[str, set[str]]:
    """Mount point -> options, as the process sees its mounts (relative to its root)."""
    mounts = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        mounts[fields[4]] = set(fields[5].split(","))
    return mounts


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image built from this tree (a build of an unchanged tree is taken from buildah's cache)."""
    iidfile = tmp_path_factory.mktemp("image") / "iid"
    subprocess.run(["bash", str(REPO / "image" / "build.sh"), f"--iidfile={iidfile}"], check=True, stdin=subprocess.DEVNULL)
    image_id = iidfile.read_text().strip().removeprefix("sha256:")
    return Image(image_id, json.loads(buildah("inspect", "--type", "image", image_id))["OCIv1"]["config"])


@pytest.fixture(scope="module")
def image_root(image: Image) -> Iterator[Path]:
    """The image's root filesystem, mounted by buildah for the module's tests."""
    # A run that was killed leaves its container behind: it goes first.
    buildah("rm", CONTAINER, check=False)
    buildah("from", "--quiet", "--pull-never", "--name", CONTAINER, image.id)
    try:
        yield Path(buildah("mount", CONTAINER).strip())
    finally:
        buildah("rm", CONTAINER, check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with ControlPlane(tmp_path_factory.mktemp("stack")) as plane:
        cluster = Cluster(plane.kubeconfig)
        apply_crds(cluster)
        cluster.kubectl("apply", "-k", str(REPO / "manifests" / "base"))
        yield cluster


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus that holds no series: every query answers, with nothing."""
    with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


def service_account(cluster: Cluster, directory: Path) -> dict[str, str]:
    """The operator's service account as a pod gets it: token, CA and namespace files in
    ``directory``; returns the environment that points an in-cluster client at the API server."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
    directory.mkdir()
    (directory / "ca.crt").write_bytes(base64.b64decode(config["certificate-authority-data"]))
    token = cluster.kubectl("create", "token", "modelpilot", "-n", "modelpilot-system").stdout.strip()
    (directory / "token").write_text(token)
    (directory / "namespace").write_text("modelpilot-system")
    server = urlsplit(config["server"])
    return {"KUBERNETES_SERVICE_HOST": str(server.hostname), "KUBERNETES_SERVICE_PORT": str(server.port)}


def test_the_deployment_runs_the_image_make_image_builds(image: Image) -> None:
    # By the name as tagged: a cluster reads a short name as one on docker.io, buildah as local.
    listing = json.loads(buildah("images", "--json", "--no-trunc"))
    names = next(entry.get("names") or [] for entry in listing if entry["id"].removeprefix("sha256:") == image.id)
    assert deployed_image() in names


def test_the_image_runs_modelpilot_on_all_namespaces_as_its_own_user(image: Image) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert image.config["User"] == f"{UID}:{UID}"
    assert Path(image.config["Entrypoint"][0]).name == "modelpilot"
    assert image.config["Cmd"] == ["run", "--all-namespaces"]
    assert image.config["Labels"]["org.opencontainers.image.version"] == version


def test_the_image_holds_no_compiler(image_root: Path) -> None:
    programs = [Path(parent, name) for parent, _, names in os.walk(image_root) for name in names]
    assert any(path.name == "python3" for path in programs)  # the walk saw the image's programs
    assert [str(path.relative_to(image_root)) for path in programs if COMPILER.search(path.name)] == []


def test_the_image_runs_as_the_operator_on_a_read_only_root(
    image: Image, image_root: Path, cluster: Cluster, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """Logged in with the shipped service account's token, the image's operator evaluates a monitor."""
    namespace = "image-check"
    cluster.kubectl("create", "namespace", namespace)
    serving_deployment(cluster, namespace)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(drift_monitor(prometheus.url, name="image-check")))
    in_cluster = service_account(cluster, tmp_path / "serviceaccount")
    liveness_port = free_port()
    args = ["run", f"--namespace={namespace}", f"--metrics-port={free_port()}", f"--liveness-port={liveness_port}"]

    def evaluated() -> dict[str, Any] | None:
        operator.check_running()
        monitor = cluster.get("mm", "image-check", namespace)
        conditions = monitor.get("status", {}).get("conditions", [])
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        # Admission marks it Pending; the first evaluation of the current spec decides.
        current = ready is not None and ready.get("observedGeneration") == monitor["metadata"]["generation"]
        return ready if current and ready["reason"] != "Pending" else None

    with ImageProcess(image, image_root, tmp_path / "serviceaccount", args, in_cluster, tmp_path / "operator.log") as operator:
        condition = wait_for(evaluated, timeout=120, what=f"an evaluation by the image's operator (log: {operator.log_path})")
        assert (condition["status"], condition["reason"]) == ("True", "Evaluated"), condition["message"]
        with urllib.request.urlopen(f"http://127.0.0.1:{liveness_port}/healthz", timeout=5) as health:
            assert health.status == 200
        pids = operator.entrypoint_pids()
        assert pids
        assert {uid for pid in pids for uid in process_uids(pid)} == {UID}
        mounts = mount_options(pids[0])
        assert "ro" in mounts["/"]
        assert "rw" in mounts["/tmp"]
        assert "Forbidden" not in operator.log_tail(400)
