"""The pod and container of a GPU process from its /proc/<pid>/cgroup, and NVML without a driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.sources.nvml import (
    ContainerRef,
    NvmlUnavailable,
    Pynvml,
    container_of_pid,
    parse_kubepods_cgroup,
)

POD_UID = "7ea7e5bf-5d4a-4b8a-9a3d-2f6b6f7c0a11"
POD_UID_SYSTEMD = POD_UID.replace("-", "_")  # the systemd driver cannot have "-" inside a slice name
CONTAINER_ID = "0f1c8e5a3b7d9e2f4a6c8b0d1e3f5a7c9b2d4f6e8a0c1b3d5f7e9a2c4b6d8f0a"
EXPECTED = ContainerRef(pod_uid=POD_UID, container_id=CONTAINER_ID)

# cgroup v1, cgroupfs driver (one line per hierarchy, as a burstable pod's container sees it).
V1_CGROUPFS = f"""\
12:hugetlb:/kubepods/burstable/pod{POD_UID}/{CONTAINER_ID}
11:memory:/kubepods/burstable/pod{POD_UID}/{CONTAINER_ID}
10:cpu,cpuacct:/kubepods/burstable/pod{POD_UID}/{CONTAINER_ID}
9:devices:/kubepods/burstable/pod{POD_UID}/{CONTAINER_ID}
1:name=systemd:/kubepods/burstable/pod{POD_UID}/{CONTAINER_ID}
0::/
"""

# cgroup v1, systemd driver, Docker through cri-dockerd.
V1_SYSTEMD = f"""\
11:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/docker-{CONTAINER_ID}.scope
10:cpu,cpuacct:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/docker-{CONTAINER_ID}.scope
1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/docker-{CONTAINER_ID}.scope
"""

# cgroup v2 (one unified line), systemd driver, containerd; a Guaranteed pod has no QoS slice.
V2_SYSTEMD_BESTEFFORT = (
    f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/"
    f"cri-containerd-{CONTAINER_ID}.scope\n"
)
V2_SYSTEMD_GUARANTEED = f"0::/kubepods.slice/kubepods-pod{POD_UID_SYSTEMD}.slice/crio-{CONTAINER_ID}.scope\n"
V2_CGROUPFS = f"0::/kubepods/besteffort/pod{POD_UID}/{CONTAINER_ID}\n"
# Read from another container's cgroup namespace: relative to the reader's cgroup.
V2_OTHER_NAMESPACE = f"0::/../../kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{CONTAINER_ID}.scope\n"
V2_OTHER_NAMESPACE_CGROUPFS = f"0::/../../pod{POD_UID}/{CONTAINER_ID}\n"


@pytest.mark.parametrize(
    "cgroup",
    [V1_CGROUPFS, V1_SYSTEMD, V2_SYSTEMD_BESTEFFORT, V2_SYSTEMD_GUARANTEED, V2_CGROUPFS, V2_OTHER_NAMESPACE,
     V2_OTHER_NAMESPACE_CGROUPFS],
    ids=["v1-cgroupfs", "v1-systemd", "v2-systemd-besteffort", "v2-systemd-guaranteed", "v2-cgroupfs",
         "v2-other-namespace", "v2-other-namespace-cgroupfs"],
)  # fmt: skip
def test_pod_uid_and_container_id_from_every_cgroup_layout(cgroup: str) -> None:
    assert parse_kubepods_cgroup(cgroup) == EXPECTED


def test_a_static_pod_has_a_hash_for_uid() -> None:
    static_uid = "5f2b0c1e8d9a4b7c6e3f2a1b0c9d8e7f"

    found = parse_kubepods_cgroup(f"0::/kubepods/burstable/pod{static_uid}/{CONTAINER_ID}\n")

    assert found == ContainerRef(pod_uid=static_uid, container_id=CONTAINER_ID)


def test_a_process_in_the_pod_cgroup_itself_has_no_container() -> None:
    found = parse_kubepods_cgroup(f"0::/kubepods.slice/kubepods-pod{POD_UID_SYSTEMD}.slice\n")

    assert found == ContainerRef(pod_uid=POD_UID, container_id="")


@pytest.mark.parametrize(
    "cgroup",
    [
        "0::/system.slice/nvidia-persistenced.service\n",
        "0::/user.slice/user-1000.slice/session-3.scope\n",
        "12:memory:/system.slice/containerd.service\n1:name=systemd:/system.slice/containerd.service\n0::/\n",
        "0::/\n",
        "",
    ],
)
def test_a_process_outside_kubernetes_has_no_pod(cgroup: str) -> None:
    assert parse_kubepods_cgroup(cgroup) is None


def test_container_of_pid_reads_the_proc_file(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(V2_SYSTEMD_BESTEFFORT)

    assert container_of_pid(4242, proc_root=tmp_path) == EXPECTED
    assert container_of_pid(4243, proc_root=tmp_path) is None  # the process has exited


def test_reads_before_init_say_nvml_is_not_initialised() -> None:
    with pytest.raises(NvmlUnavailable, match="not initialised"):
        Pynvml().device_count()


def test_init_without_a_driver_raises_unavailable() -> None:
    nvml = Pynvml()
    try:
        nvml.init()
    except NvmlUnavailable as err:
        assert str(err)  # NVML's own reason, for the one log line
        return
    nvml.shutdown()
    pytest.skip("NVML works on this machine: the no-driver behaviour cannot be observed here")
