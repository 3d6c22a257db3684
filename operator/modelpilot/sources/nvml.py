"""Reading NVIDIA GPUs through NVML, and finding the pod and container of a GPU process.

Everything the GPU exporter reads goes through :class:`NvmlApi`, so tests can hand it a fake; the
real one, :class:`Pynvml`, wraps the ``pynvml`` module of the ``nvidia-ml-py`` package and turns
its errors into :class:`NvmlError`. Values keep NVML's units (bytes, milliwatts, MHz, degrees C);
the exporter converts them. Imports only the standard library at import time (``pynvml`` is
loaded by :meth:`Pynvml.init`), so the exporter runs without the rest of modelpilot installed.

A process is mapped to its pod through ``/proc/<pid>/cgroup``: kubelet puts every container in a
cgroup below ``kubepods`` whose path holds the pod UID and the container ID, in all four layouts
(cgroup v1 or v2, cgroupfs or systemd driver). Pod names are not in that path; the UID joins
kube-state-metrics' ``kube_pod_info{uid=...}`` for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

__all__ = [
    "ContainerRef",
    "DeviceIdentity",
    "GpuProcess",
    "GpuReading",
    "MemoryInfo",
    "NvmlApi",
    "NvmlError",
    "NvmlUnavailable",
    "Pynvml",
    "Utilization",
    "container_of_pid",
    "parse_kubepods_cgroup",
    "read_gpu",
]

_T = TypeVar("_T")


class NvmlError(Exception):
    """One NVML read failed (not supported on this GPU, GPU lost, no permission)."""


class NvmlUnavailable(NvmlError):
    """NVML cannot start: no library, no driver loaded, or no GPU visible to this process."""


class DeviceIdentity(NamedTuple):
    gpu_index: int
    uuid: str
    name: str
    minor_number: int | None  # the N of /dev/nvidiaN; None where NVML cannot tell (e.g. vGPU)
    pci_bus_id: str


class Utilization(NamedTuple):
    gpu_percent: int
    memory_percent: int


class MemoryInfo(NamedTuple):
    total_bytes: int
    used_bytes: int
    free_bytes: int


class GpuProcess(NamedTuple):
    pid: int
    used_memory_bytes: int | None  # None where the driver does not account per process


class NvmlApi(Protocol):
    """The NVML calls the exporter needs, by GPU index. Every read may raise :class:`NvmlError`."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def driver_version(self) -> str: ...
    def device_count(self) -> int: ...
    def identity(self, index: int) -> DeviceIdentity: ...
    def utilization(self, index: int) -> Utilization: ...
    def memory(self, index: int) -> MemoryInfo: ...
    def temperature_c(self, index: int) -> int: ...
    def power_mw(self, index: int) -> int: ...
    def sm_clock_mhz(self, index: int) -> int: ...
    def processes(self, index: int) -> list[GpuProcess]: ...
    def last_xid(self, index: int) -> int: ...


class GpuReading(NamedTuple):
    """One GPU at one moment; a field is None when its read failed (the reason is in ``failures``)."""

    identity: DeviceIdentity
    utilization: Utilization | None
    memory: MemoryInfo | None
    temperature_c: int | None
    power_mw: int | None
    sm_clock_mhz: int | None
    last_xid: int | None
    processes: tuple[GpuProcess, ...] | None
    failures: tuple[tuple[str, str], ...]  # (field, NVML's reason)


def read_gpu(api: NvmlApi, index: int) -> GpuReading:
    """Read every field of one GPU, dropping only the fields whose read fails.

    Raises :class:`NvmlError` only when the GPU cannot be identified: without its UUID no series
    could be labelled.
    """
    identity = api.identity(index)
    failures: list[tuple[str, str]] = []

    def attempt(field: str, read: Callable[[int], _T]) -> _T | None:
        try:
            return read(index)
        except NvmlError as err:
            failures.append((field, str(err) or type(err).__name__))
            return None

    processes = attempt("processes", api.processes)
    return GpuReading(
        identity=identity,
        utilization=attempt("utilization", api.utilization),
        memory=attempt("memory", api.memory),
        temperature_c=attempt("temperature", api.temperature_c),
        power_mw=attempt("power", api.power_mw),
        sm_clock_mhz=attempt("sm_clock", api.sm_clock_mhz),
        last_xid=attempt("xid", api.last_xid),
        processes=None if processes is None else tuple(processes),
        failures=tuple(failures),
    )


def _text(value: bytes | str) -> str:
    # nvidia-ml-py returns str on Python 3 in recent releases and bytes in older ones.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class Pynvml:
    """:class:`NvmlApi` on the real NVML library through ``pynvml``.

    XID errors are not a value NVML can be asked for: they arrive as events. Each GPU gets its own
    event set at :meth:`init`, drained without waiting on every :meth:`last_xid`; where the
    registration fails (not supported, no permission) ``last_xid`` raises and the series is left out.
    """

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._handle_errors: dict[int, str] = {}
        self._xid_sets: dict[int, Any] = {}
        self._xid_errors: dict[int, str] = {}
        self._last_xid: dict[int, int] = {}
        self._memory_v2 = True

    def init(self) -> None:
        try:
            import pynvml
        except ImportError as err:
            raise NvmlUnavailable(f"the pynvml module (package nvidia-ml-py) is not installed: {err}") from err
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            raise NvmlUnavailable(str(err)) from err
        self._nvml = pynvml
        self._handles, self._handle_errors = [], {}
        try:
            count = self._call(pynvml.nvmlDeviceGetCount)
        except NvmlError as err:
            self.shutdown()
            raise NvmlUnavailable(f"NVML started but cannot count GPUs: {err}") from err
        for index in range(count):
            try:
                self._handles.append(self._call(pynvml.nvmlDeviceGetHandleByIndex, index))
            except NvmlError as err:
                self._handles.append(None)
                self._handle_errors[index] = str(err)
        self._watch_xids()

    def _watch_xids(self) -> None:
        nvml = self._lib
        self._xid_sets, self._xid_errors, self._last_xid = {}, {}, {}
        for index, handle in enumerate(self._handles):
            if handle is None:
                continue
            try:
                event_set = self._call(nvml.nvmlEventSetCreate)
            except NvmlError as err:
                self._xid_errors[index] = f"XID events cannot be watched: {err}"
                continue
            try:
                self._call(nvml.nvmlDeviceRegisterEvents, handle, nvml.nvmlEventTypeXidCriticalError, event_set)
            except NvmlError as err:
                self._xid_errors[index] = f"XID events cannot be watched: {err}"
                self._free_event_set(event_set)
                continue
            self._xid_sets[index] = event_set
            self._last_xid[index] = 0  # as DCGM: 0 until an XID arrives after start

    def _free_event_set(self, event_set: Any) -> None:
        try:
            self._nvml.nvmlEventSetFree(event_set)
        except self._nvml.NVMLError:
            pass  # freeing at shutdown: nothing left to do about it

    def shutdown(self) -> None:
        if self._nvml is None:
            return
        for event_set in self._xid_sets.values():
            self._free_event_set(event_set)
        self._xid_sets = {}
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass  # the library is going away either way
        self._nvml = None

    @property
    def _lib(self) -> Any:
        if self._nvml is None:
            raise NvmlUnavailable("NVML is not initialised")
        return self._nvml

    def _call(self, function: Callable[..., _T], *args: Any) -> _T:
        try:
            return function(*args)
        except self._lib.NVMLError as err:
            raise NvmlError(str(err)) from err

    def _handle(self, index: int) -> Any:
        if index >= len(self._handles):
            raise NvmlError(f"no GPU {index}")
        handle = self._handles[index]
        if handle is None:
            raise NvmlError(self._handle_errors.get(index, "no handle"))
        return handle

    def driver_version(self) -> str:
        return _text(self._call(self._lib.nvmlSystemGetDriverVersion))

    def device_count(self) -> int:
        # Asked again on every reading so that a driver that went away shows as an error here.
        self._call(self._lib.nvmlDeviceGetCount)
        return len(self._handles)

    def identity(self, index: int) -> DeviceIdentity:
        nvml, handle = self._lib, self._handle(index)
        try:
            minor: int | None = self._call(nvml.nvmlDeviceGetMinorNumber, handle)
        except NvmlError:
            minor = None
        try:
            bus_id = _text(self._call(nvml.nvmlDeviceGetPciInfo, handle).busId)
        except NvmlError:
            bus_id = ""
        return DeviceIdentity(
            gpu_index=index,
            uuid=_text(self._call(nvml.nvmlDeviceGetUUID, handle)),
            name=_text(self._call(nvml.nvmlDeviceGetName, handle)),
            minor_number=minor,
            pci_bus_id=bus_id,
        )

    def utilization(self, index: int) -> Utilization:
        rates = self._call(self._lib.nvmlDeviceGetUtilizationRates, self._handle(index))
        return Utilization(gpu_percent=int(rates.gpu), memory_percent=int(rates.memory))

    def memory(self, index: int) -> MemoryInfo:
        nvml, handle = self._lib, self._handle(index)
        # v2 leaves the driver's reserved memory out of "used", as nvidia-smi and DCGM do; v1
        # counts it as used. Older drivers have only v1.
        if self._memory_v2:
            try:
                info = self._call(nvml.nvmlDeviceGetMemoryInfo, handle, nvml.nvmlMemory_v2)
                return MemoryInfo(total_bytes=int(info.total), used_bytes=int(info.used), free_bytes=int(info.free))
            except (NvmlError, AttributeError):
                self._memory_v2 = False
        info = self._call(nvml.nvmlDeviceGetMemoryInfo, handle)
        return MemoryInfo(total_bytes=int(info.total), used_bytes=int(info.used), free_bytes=int(info.free))

    def temperature_c(self, index: int) -> int:
        nvml = self._lib
        return int(self._call(nvml.nvmlDeviceGetTemperature, self._handle(index), nvml.NVML_TEMPERATURE_GPU))

    def power_mw(self, index: int) -> int:
        return int(self._call(self._lib.nvmlDeviceGetPowerUsage, self._handle(index)))

    def sm_clock_mhz(self, index: int) -> int:
        nvml = self._lib
        return int(self._call(nvml.nvmlDeviceGetClockInfo, self._handle(index), nvml.NVML_CLOCK_SM))

    def processes(self, index: int) -> list[GpuProcess]:
        nvml, handle = self._lib, self._handle(index)
        by_pid: dict[int, int | None] = {}
        # A process that both computes and draws is listed twice with the same memory.
        for listing in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
            for process in self._call(listing, handle):
                used = process.usedGpuMemory
                used = None if used is None else int(used)
                previous = by_pid.get(int(process.pid))
                by_pid[int(process.pid)] = used if previous is None else max(previous, used or 0)
        return [GpuProcess(pid=pid, used_memory_bytes=used) for pid, used in sorted(by_pid.items())]

    def last_xid(self, index: int) -> int:
        nvml = self._lib
        self._handle(index)
        event_set = self._xid_sets.get(index)
        if event_set is None:
            raise NvmlError(self._xid_errors.get(index, "XID events are not watched"))
        while True:
            try:
                event = nvml.nvmlEventSetWait(event_set, 0)
            except nvml.NVMLError_Timeout:
                break  # no more events waiting
            except nvml.NVMLError as err:
                raise NvmlError(str(err)) from err
            if event.eventType & nvml.nvmlEventTypeXidCriticalError:
                self._last_xid[index] = int(event.eventData)
        return self._last_xid[index]


class ContainerRef(NamedTuple):
    pod_uid: str
    container_id: str  # "" for a process in the pod's own cgroup rather than a container's


_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}"
# A pod segment: "pod<uid>" (cgroupfs driver) or "kubepods-<qos>-pod<uid_with_underscores>.slice"
# (systemd driver), anywhere below a kubepods cgroup; static pods have a 32-hex UID.
_POD_SEGMENT = re.compile(rf"(?:^|[-/])pod(?P<uid>{_UID})(?:\.slice)?$")
# A container segment: the bare ID (cgroupfs) or "<runtime>-<id>.scope" (systemd driver).
_CONTAINER_SEGMENT = re.compile(r"^(?:(?:cri-containerd|docker|crio|cri-o)-)?(?P<id>[0-9a-f]{64})(?:\.scope)?$")


def parse_kubepods_cgroup(text: str) -> ContainerRef | None:
    """The pod UID and container ID in the text of a ``/proc/<pid>/cgroup``, or None outside a pod.

    Lines are ``hierarchy-ID:controllers:path`` (v1: one line per hierarchy; v2: one ``0::`` line).
    The path may start with ``/..`` segments, even past the ``kubepods`` part, when the reader sits
    in another cgroup namespace, so the pod segment is searched for rather than anchored.
    """
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        segments = [s for s in parts[2].split("/") if s]
        for position, segment in enumerate(segments):
            pod = _POD_SEGMENT.search(segment)
            if pod is None:
                continue
            container_id = ""
            if position + 1 < len(segments):
                container = _CONTAINER_SEGMENT.match(segments[position + 1])
                container_id = container.group("id") if container else ""
            return ContainerRef(pod_uid=pod.group("uid").replace("_", "-"), container_id=container_id)
    return None


def container_of_pid(pid: int, proc_root: Path = Path("/proc")) -> ContainerRef | None:
    """The pod and container of a process, or None (no pod, process gone, /proc not readable)."""
    try:
        text = (proc_root / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    return parse_kubepods_cgroup(text)
