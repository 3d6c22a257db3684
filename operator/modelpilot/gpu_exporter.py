"""The GPU exporter: this node's NVIDIA GPUs as Prometheus metrics under the DCGM exporter's names.

``modelpilot gpu-exporter`` reads NVML and serves the counters of NVIDIA's dcgm-exporter default
set that NVML can answer, with the same names, units and labels (``gpu``, ``UUID``, ``pci_bus_id``,
``device``, ``modelName``, ``Hostname``, ``DCGM_FI_DRIVER_VERSION``), so PromQL written for DCGM works
where DCGM is not installed:

| series | unit | NVML source |
| --- | --- | --- |
| ``DCGM_FI_DEV_GPU_UTIL`` | % | utilization rates, gpu |
| ``DCGM_FI_DEV_MEM_COPY_UTIL`` | % | utilization rates, memory |
| ``DCGM_FI_DEV_FB_USED`` / ``_FB_FREE`` | MiB | memory info (v2: reserved memory is neither) |
| ``DCGM_FI_DEV_GPU_TEMP`` | C | GPU temperature sensor |
| ``DCGM_FI_DEV_POWER_USAGE`` | W | power usage (mW from NVML) |
| ``DCGM_FI_DEV_SM_CLOCK`` | MHz | SM clock |
| ``DCGM_FI_DEV_XID_ERRORS`` | XID | last XID critical-error event since start (0 before any) |

``DCGM_FI_DEV_XID_ERRORS`` is left out for a GPU whose XID events cannot be watched (NVML refuses
the registration, e.g. without the rights inside a container); any other read that fails for one
GPU (``Not Supported``) leaves out only that series, logged once.

DCGM adds ``namespace``/``pod``/``container`` from the kubelet's pod-resources API, which this
exporter does not call. Instead each GPU process gets
``modelpilot_gpu_process_memory_used_bytes{gpu, UUID, pid, pod_uid, container_id}``, the pod and
container read from the process's cgroup (empty outside a pod; needs the host's PID namespace).
Pod names come from kube-state-metrics, e.g.
``... * on (pod_uid) group_left (namespace, pod) label_replace(kube_pod_info, "pod_uid", "$1", "uid", "(.+)")``.

Without NVML (no driver, no GPU) it logs one line, serves ``modelpilot_gpu_exporter_up 0`` and
tries NVML again at the next reading; ``--once`` prints one exposition and exits 1 instead.
Imports only ``prometheus_client`` and the standard library, so it runs from a source tree.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelpilot.sources.nvml import (
    ContainerRef,
    GpuReading,
    NvmlApi,
    NvmlError,
    Pynvml,
    container_of_pid,
    read_gpu,
)

__all__ = [
    "DCGM_FIELDS",
    "DEFAULT_PORT",
    "DcgmField",
    "GpuCollector",
    "NodeReading",
    "add_arguments",
    "build_metrics",
    "main",
    "run",
    "run_exporter",
    "serve",
]

log = logging.getLogger("modelpilot.gpu_exporter")  # not "__main__" when run with -m

DEFAULT_PORT = 9400  # dcgm-exporter's port, so existing scrape configs find it
MIB = 1024 * 1024
DCGM_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION")
PROCESS_LABELS = ("gpu", "UUID", "pid", "pod_uid", "container_id")


class DcgmField(NamedTuple):
    name: str
    help: str  # dcgm-exporter's help text, so both exporters describe a series alike
    value: Callable[[GpuReading], float | None]


def _mib(used: bool) -> Callable[[GpuReading], float | None]:
    def value(reading: GpuReading) -> float | None:
        if reading.memory is None:
            return None
        # DCGM reports whole MiB.
        return float((reading.memory.used_bytes if used else reading.memory.free_bytes) // MIB)

    return value


DCGM_FIELDS: tuple[DcgmField, ...] = (
    DcgmField("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", lambda r: r.sm_clock_mhz),
    DcgmField("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", lambda r: r.temperature_c),
    DcgmField(
        "DCGM_FI_DEV_POWER_USAGE",
        "Power draw (in W).",
        lambda r: None if r.power_mw is None else r.power_mw / 1000.0,
    ),
    DcgmField(
        "DCGM_FI_DEV_GPU_UTIL",
        "GPU utilization (in %).",
        lambda r: None if r.utilization is None else r.utilization.gpu_percent,
    ),
    DcgmField(
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "Memory utilization (in %).",
        lambda r: None if r.utilization is None else r.utilization.memory_percent,
    ),
    DcgmField("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", lambda r: r.last_xid),
    DcgmField("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", _mib(used=False)),
    DcgmField("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", _mib(used=True)),
)


class NodeReading(NamedTuple):
    """What the exporter serves: every GPU of the node at one moment, and the pods of their processes."""

    up: bool
    driver_version: str
    gpus: tuple[GpuReading, ...]
    containers: Mapping[int, ContainerRef]  # pid -> pod and container, for pids inside a pod


NO_READING = NodeReading(up=False, driver_version="", gpus=(), containers={})


def build_metrics(reading: NodeReading, hostname: str) -> list[Metric]:
    """The metric families of one reading: pure, so the formatting is tested without a GPU."""
    up = GaugeMetricFamily(
        "modelpilot_gpu_exporter_up",
        "1 when NVML answered at the last reading; 0 without an NVIDIA driver or GPU.",
        value=1.0 if reading.up else 0.0,
    )
    families = {field.name: GaugeMetricFamily(field.name, field.help, labels=DCGM_LABELS) for field in DCGM_FIELDS}
    processes = GaugeMetricFamily(
        "modelpilot_gpu_process_memory_used_bytes",
        "GPU memory used by one process, with the pod UID and container ID from its cgroup (empty outside a pod).",
        labels=PROCESS_LABELS,
    )
    for gpu in reading.gpus:
        identity = gpu.identity
        device = "" if identity.minor_number is None else f"nvidia{identity.minor_number}"
        labels = [
            str(identity.gpu_index),
            identity.uuid,
            identity.pci_bus_id,
            device,
            identity.name,
            hostname,
            reading.driver_version,
        ]
        for field in DCGM_FIELDS:
            value = field.value(gpu)
            if value is not None:
                families[field.name].add_metric(labels, float(value))
        for process in gpu.processes or ():
            if process.used_memory_bytes is None:
                continue
            container = reading.containers.get(process.pid, ContainerRef("", ""))
            processes.add_metric(
                [str(identity.gpu_index), identity.uuid, str(process.pid), container.pod_uid, container.container_id],
                float(process.used_memory_bytes),
            )
    # A family without samples is left out, so a node without NVML serves only the up series.
    return [up, *(family for family in (*families.values(), processes) if family.samples)]


class GpuCollector(Collector):
    """Reads NVML at most once per ``interval_s`` (on a scrape) and serves the latest reading.

    Reading on scrape rather than on a timer keeps the values as fresh as the scrape; the interval
    keeps several scrapers from multiplying the NVML calls. NVML is started lazily and started
    again after it fails, so a driver that appears after the exporter is picked up.
    """

    def __init__(
        self,
        api: NvmlApi,
        *,
        hostname: str,
        interval_s: float = 1.0,
        container_of: Callable[[int], ContainerRef | None] = container_of_pid,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._hostname = hostname
        self._interval_s = interval_s
        self._container_of = container_of
        self._clock = clock
        self._lock = threading.Lock()  # the HTTP server scrapes from several threads
        self._started = False
        self._driver_version = ""
        self._reading = NO_READING
        self._read_at: float | None = None
        self._logged: set[tuple[str, ...]] = set()
        self._last_down_reason: str | None = None

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not read NVML

    def collect(self) -> Iterator[Metric]:
        yield from build_metrics(self.read(), self._hostname)

    def read(self) -> NodeReading:
        """The current reading, taken now when the last one is older than the interval."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._interval_s:
                self._reading = self._take_reading()
                self._read_at = now
            return self._reading

    def close(self) -> None:
        with self._lock:
            if self._started:
                self._api.shutdown()
                self._started = False

    def _take_reading(self) -> NodeReading:
        if not self._started and not self._start():
            return NO_READING
        try:
            count = self._api.device_count()
        except NvmlError as err:
            self._down(f"NVML stopped answering: {err}")
            self._api.shutdown()
            self._started = False
            return NO_READING
        gpus = []
        for index in range(count):
            try:
                gpus.append(read_gpu(self._api, index))
            except NvmlError as err:
                self._log_once(("gpu", str(index), str(err)), "GPU %d cannot be identified, left out: %s", index, err)
        for gpu in gpus:
            for field, reason in gpu.failures:
                self._log_once(
                    (gpu.identity.uuid, field, reason),
                    "GPU %d (%s): %s not readable, its series is left out: %s",
                    gpu.identity.gpu_index,
                    gpu.identity.uuid,
                    field,
                    reason,
                )
        containers = {}
        for gpu in gpus:
            for process in gpu.processes or ():
                container = self._container_of(process.pid)
                if container is not None:
                    containers[process.pid] = container
        return NodeReading(up=True, driver_version=self._driver_version, gpus=tuple(gpus), containers=containers)

    def _start(self) -> bool:
        try:
            self._api.init()
        except NvmlError as err:
            self._down(f"NVML is not available ({err})")
            return False
        try:
            self._driver_version = self._api.driver_version()
            count = self._api.device_count()
        except NvmlError as err:
            self._down(f"NVML started but does not answer ({err})")
            self._api.shutdown()
            return False
        self._started = True
        self._last_down_reason = None
        log.info("NVML started: driver %s, %d GPU(s)", self._driver_version, count)
        return True

    def _down(self, reason: str) -> None:
        # One line per distinct reason: a node without a driver must not log every scrape.
        if reason != self._last_down_reason:
            log.warning("%s: modelpilot_gpu_exporter_up is 0 until NVML answers", reason)
            self._last_down_reason = reason

    def _log_once(self, key: tuple[str, ...], message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.info(message, *args)


def serve(collector: Collector, port: int, address: str = "0.0.0.0") -> tuple[WSGIServer, threading.Thread]:
    """Serve ``collector`` alone on ``/metrics`` in a daemon thread; port 0 picks a free port."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(port, address, registry=registry)
    return server, thread


def node_hostname() -> str:
    # dcgm-exporter labels Hostname with NODE_NAME when set (the DaemonSet passes spec.nodeName):
    # the pod's own hostname would be the pod name.
    return os.environ.get("NODE_NAME") or socket.gethostname()


def run_exporter(
    *,
    port: int = DEFAULT_PORT,
    address: str = "0.0.0.0",
    interval_s: float = 1.0,
    once: bool = False,
    api: NvmlApi | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT (exit 0), or with ``once`` print one exposition (exit 1 without NVML)."""
    collector = GpuCollector(Pynvml() if api is None else api, hostname=node_hostname(), interval_s=interval_s)
    if once:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        up = collector.read().up
        sys.stdout.write(generate_latest(registry).decode())
        collector.close()
        return 0 if up else 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server, _ = serve(collector, port, address)
    log.info("serving GPU metrics on http://%s:%d/metrics", address, port)
    collector.read()  # log NVML's state at start, not at the first scrape
    stop.wait()
    server.shutdown()
    collector.close()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``modelpilot gpu-exporter``, shared by the CLI and :func:`main`."""
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of /metrics (default 9400, as DCGM)")
    parser.add_argument("--address", default="0.0.0.0", help="address to listen on")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="read NVML at most once per this many seconds; scrapes in between get the last reading",
    )
    parser.add_argument("--once", action="store_true", help="print one exposition and exit: 0 with NVML, 1 without")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run the exporter with options parsed by a parser that :func:`add_arguments` set up."""
    return run_exporter(port=args.port, address=args.address, interval_s=args.interval, once=args.once)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelpilot gpu-exporter", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
