"""The GPU exporter: DCGM names, labels and units from a fake NVML, and the real exporter without a driver."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelpilot.gpu_exporter import (
    DCGM_FIELDS,
    GpuCollector,
    main,
    run_exporter,
    serve,
)
from modelpilot.sources.nvml import (
    ContainerRef,
    DeviceIdentity,
    GpuProcess,
    MemoryInfo,
    NvmlError,
    NvmlUnavailable,
    Pynvml,
    Utilization,
)

MIB = 1024 * 1024
UUID_0 = "GPU-5d3e2f6a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
UUID_1 = "GPU-0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
POD_UID = "7ea7e5bf-5d4a-4b8a-9a3d-2f6b6f7c0a11"
CONTAINER_ID = "0f1c8e5a3b7d9e2f4a6c8b0d1e3f5a7c9b2d4f6e8a0c1b3d5f7e9a2c4b6d8f0a"


class FakeNvml:
    """A stand-in for NVML with scripted GPUs: no GPU is present where these tests run.

    ``unsupported`` holds (gpu index, field) pairs whose read raises like NVMLError_NotSupported.
    """

    def __init__(self, gpu_count: int = 2) -> None:
        self.gpu_count = gpu_count
        self.init_error: str | None = None
        self.count_error: str | None = None
        self.unidentifiable: set[int] = set()
        self.unsupported: set[tuple[int, str]] = set()
        self.processes_by_gpu: dict[int, list[GpuProcess]] = {}
        self.inits = 0
        self.shutdowns = 0
        self.memory_reads = 0

    def _check(self, index: int, field: str) -> None:
        if (index, field) in self.unsupported:
            raise NvmlError("Not Supported")

    def init(self) -> None:
        self.inits += 1
        if self.init_error is not None:
            raise NvmlUnavailable(self.init_error)

    def shutdown(self) -> None:
        self.shutdowns += 1

    def driver_version(self) -> str:
        return "550.54.15"

    def device_count(self) -> int:
        if self.count_error is not None:
            raise NvmlError(self.count_error)
        return self.gpu_count

    def identity(self, index: int) -> DeviceIdentity:
        if index in self.unidentifiable:
            raise NvmlError("GPU is lost")
        return DeviceIdentity(
            gpu_index=index,
            uuid=(UUID_0, UUID_1)[index],
            name="NVIDIA H200",
            minor_number=index + 4,  # deliberately not the index: `device` follows the minor number
            pci_bus_id=f"00000000:{0x18 + index:02X}:00.0",
        )

    def utilization(self, index: int) -> Utilization:
        self._check(index, "utilization")
        return Utilization(gpu_percent=87 + index, memory_percent=41 + index)

    def memory(self, index: int) -> MemoryInfo:
        self._check(index, "memory")
        self.memory_reads += 1
        total = 143771 * MIB
        used = 1536 * MIB + 524288  # half a MiB more: DCGM reports whole MiB
        return MemoryInfo(total_bytes=total, used_bytes=used, free_bytes=total - used - 512 * MIB)

    def temperature_c(self, index: int) -> int:
        self._check(index, "temperature")
        return 34 + index

    def power_mw(self, index: int) -> int:
        self._check(index, "power")
        return 312456 + index

    def sm_clock_mhz(self, index: int) -> int:
        self._check(index, "sm_clock")
        return 1980

    def processes(self, index: int) -> list[GpuProcess]:
        self._check(index, "processes")
        return self.processes_by_gpu.get(index, [])

    def last_xid(self, index: int) -> int:
        self._check(index, "xid")
        return 79 if index == 1 else 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(collector: GpuCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Name -> [(labels, value)], through the text exposition a scraper sees."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def value_of(found: dict[str, list[tuple[dict[str, str], float]]], name: str, gpu: str) -> float:
    values = [value for labels, value in found.get(name, []) if labels.get("gpu") == gpu]
    assert len(values) == 1, (name, gpu, found.get(name))
    return values[0]


@pytest.fixture
def nvml_fake() -> FakeNvml:
    return FakeNvml()


def collector_for(
    api: FakeNvml,
    *,
    interval_s: float = 0.0,
    clock: Callable[[], float] | None = None,
    container_of: Callable[[int], ContainerRef | None] = lambda pid: None,
) -> GpuCollector:
    return GpuCollector(api, hostname="gpu-node-1", interval_s=interval_s, clock=clock or FakeClock(), container_of=container_of)


def test_every_dcgm_series_has_dcgm_labels_and_units(nvml_fake: FakeNvml) -> None:
    found = samples(collector_for(nvml_fake))

    assert found["modelpilot_gpu_exporter_up"] == [({}, 1.0)]
    for field in DCGM_FIELDS:
        assert len(found[field.name]) == 2, field.name
    labels = dict(next(labels for labels, _ in found["DCGM_FI_DEV_GPU_UTIL"] if labels["gpu"] == "1"))
    assert labels == {
        "gpu": "1",
        "UUID": UUID_1,
        "pci_bus_id": "00000000:19:00.0",
        "device": "nvidia5",
        "modelName": "NVIDIA H200",
        "Hostname": "gpu-node-1",
        "DCGM_FI_DRIVER_VERSION": "550.54.15",
    }
    assert value_of(found, "DCGM_FI_DEV_GPU_UTIL", "0") == 87
    assert value_of(found, "DCGM_FI_DEV_MEM_COPY_UTIL", "0") == 41
    assert value_of(found, "DCGM_FI_DEV_FB_USED", "0") == 1536  # bytes -> whole MiB, rounded down
    assert value_of(found, "DCGM_FI_DEV_FB_FREE", "0") == 143771 - 1536 - 1 - 512
    assert value_of(found, "DCGM_FI_DEV_GPU_TEMP", "1") == 35
    assert value_of(found, "DCGM_FI_DEV_POWER_USAGE", "0") == pytest.approx(312.456)  # mW -> W
    assert value_of(found, "DCGM_FI_DEV_SM_CLOCK", "0") == 1980
    assert value_of(found, "DCGM_FI_DEV_XID_ERRORS", "1") == 79


def test_a_read_that_fails_on_one_gpu_drops_only_that_series(nvml_fake: FakeNvml) -> None:
    nvml_fake.unsupported = {(0, "power"), (1, "xid")}

    found = samples(collector_for(nvml_fake))

    assert [labels["gpu"] for labels, _ in found["DCGM_FI_DEV_POWER_USAGE"]] == ["1"]
    assert [labels["gpu"] for labels, _ in found["DCGM_FI_DEV_XID_ERRORS"]] == ["0"]
    assert value_of(found, "DCGM_FI_DEV_GPU_TEMP", "0") == 34
    assert found["modelpilot_gpu_exporter_up"] == [({}, 1.0)]


def test_a_failed_read_is_logged_once_however_often_it_is_scraped(nvml_fake: FakeNvml, caplog: pytest.LogCaptureFixture) -> None:
    nvml_fake.unsupported = {(0, "power")}
    collector = collector_for(nvml_fake)

    with caplog.at_level(logging.INFO, logger="modelpilot.gpu_exporter"):
        for _ in range(3):
            samples(collector)

    about_power = [r for r in caplog.records if "power" in r.getMessage()]
    assert len(about_power) == 1
    assert "Not Supported" in about_power[0].getMessage()


def test_a_gpu_that_cannot_be_identified_is_left_out_and_the_other_served(nvml_fake: FakeNvml) -> None:
    nvml_fake.unidentifiable = {0}

    found = samples(collector_for(nvml_fake))

    assert [labels["gpu"] for labels, _ in found["DCGM_FI_DEV_GPU_UTIL"]] == ["1"]


def test_process_memory_is_labelled_with_pod_and_container_from_the_cgroup(nvml_fake: FakeNvml) -> None:
    nvml_fake.processes_by_gpu = {
        0: [GpuProcess(pid=4242, used_memory_bytes=1024 * MIB), GpuProcess(pid=77, used_memory_bytes=None)],
        1: [GpuProcess(pid=515, used_memory_bytes=256 * MIB)],
    }
    pods = {4242: ContainerRef(POD_UID, CONTAINER_ID)}

    found = samples(collector_for(nvml_fake, container_of=pods.get))

    assert sorted(found["modelpilot_gpu_process_memory_used_bytes"], key=lambda s: s[0]["pid"]) == [
        ({"gpu": "0", "UUID": UUID_0, "pid": "4242", "pod_uid": POD_UID, "container_id": CONTAINER_ID}, 1024.0 * MIB),
        ({"gpu": "1", "UUID": UUID_1, "pid": "515", "pod_uid": "", "container_id": ""}, 256.0 * MIB),
    ]  # pid 77's memory is not accounted by the driver: no series rather than a made-up 0


def test_nvml_is_read_at_most_once_per_interval(nvml_fake: FakeNvml) -> None:
    clock = FakeClock()
    collector = collector_for(nvml_fake, interval_s=5.0, clock=clock)

    samples(collector)
    samples(collector)
    reads_within_interval = nvml_fake.memory_reads
    clock.now += 5.0
    samples(collector)

    assert reads_within_interval == 2  # one reading of two GPUs
    assert nvml_fake.memory_reads == 4


def test_without_nvml_up_is_0_and_it_recovers_when_nvml_appears(nvml_fake: FakeNvml, caplog: pytest.LogCaptureFixture) -> None:
    nvml_fake.init_error = "Driver Not Loaded"
    collector = collector_for(nvml_fake)

    with caplog.at_level(logging.INFO, logger="modelpilot.gpu_exporter"):
        down = [samples(collector) for _ in range(3)]
        nvml_fake.init_error = None
        up = samples(collector)

    assert all(found == {"modelpilot_gpu_exporter_up": [({}, 0.0)]} for found in down)
    assert nvml_fake.inits == 4  # tried again at every reading, not given up on
    assert len([r for r in caplog.records if "Driver Not Loaded" in r.getMessage()]) == 1
    assert up["modelpilot_gpu_exporter_up"] == [({}, 1.0)]
    assert len(up["DCGM_FI_DEV_GPU_UTIL"]) == 2


def test_nvml_that_stops_answering_is_shut_down_and_started_again(nvml_fake: FakeNvml) -> None:
    collector = collector_for(nvml_fake)
    samples(collector)
    nvml_fake.count_error = "GPU is lost"

    lost = samples(collector)
    nvml_fake.count_error = None
    back = samples(collector)

    assert lost == {"modelpilot_gpu_exporter_up": [({}, 0.0)]}
    assert nvml_fake.shutdowns == 1
    assert nvml_fake.inits == 2
    assert back["modelpilot_gpu_exporter_up"] == [({}, 1.0)]


def test_once_prints_one_exposition_and_says_whether_nvml_answered(
    nvml_fake: FakeNvml, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_exporter(once=True, api=nvml_fake) == 0
    printed = capsys.readouterr().out
    nvml_fake.init_error = "NVML Shared Library Not Found"
    assert run_exporter(once=True, api=nvml_fake) == 1

    assert "modelpilot_gpu_exporter_up 1.0" in printed
    assert "DCGM_FI_DEV_FB_USED{" in printed
    assert "modelpilot_gpu_exporter_up 0.0" in capsys.readouterr().out


@pytest.fixture
def real_nvml_absent() -> Iterator[None]:
    """This machine has no NVIDIA driver; where one is present these tests do not apply."""
    try:
        Pynvml().init()
    except NvmlUnavailable:
        yield
        return
    pytest.skip("NVML works on this machine: the no-driver behaviour cannot be observed here")


@pytest.mark.usefixtures("real_nvml_absent")
def test_without_a_driver_the_real_exporter_serves_up_0_over_http(caplog: pytest.LogCaptureFixture) -> None:
    collector = GpuCollector(Pynvml(), hostname="node-without-gpu", interval_s=0.0)
    with caplog.at_level(logging.INFO, logger="modelpilot.gpu_exporter"):
        server, thread = serve(collector, port=0, address="127.0.0.1")
        try:
            url = f"http://127.0.0.1:{server.server_port}/metrics"
            bodies = [urllib.request.urlopen(url, timeout=10).read().decode() for _ in range(3)]
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    for body in bodies:
        found = {f.name: [s.value for s in f.samples] for f in text_string_to_metric_families(body)}
        assert found == {"modelpilot_gpu_exporter_up": [0.0]}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "NVML is not available" in warnings[0].getMessage()


@pytest.mark.usefixtures("real_nvml_absent")
def test_once_without_a_driver_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--once"]) == 1
    assert "modelpilot_gpu_exporter_up 0.0" in capsys.readouterr().out
