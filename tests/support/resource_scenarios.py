"""Resource histories of three served models, as cAdvisor, kube-state-metrics and NVIDIA's DCGM
exporter would have exported them, sampled every minute: a pressured model (throttled, memory at
its limit, OOM-killed, a hot GPU with an XID error), an idle one (large requests, little use) and
a healthy one. Decoys that a correct pod selection leaves out: the pods of a Deployment whose
name starts alike, cAdvisor's pod-level series (``container=""``) and the pause container.

The per-minute usage of every pod is kept, so a test can work out from it what a rule gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from tests.support.history import MetricsHistory
from tests.support.scenarios import floor_time

__all__ = ["MIB", "ModelLoad", "ResourceScenario", "resource_scenario"]

MIB = 2**20
STEP = timedelta(minutes=1)
CFS_PERIODS_PER_MINUTE = 600.0  # 100 ms CFS periods


@dataclass(frozen=True)
class ModelLoad:
    """What one model's pods do: usage levels, requests and limits, and trouble in the last hour."""

    cpu_mean: float
    cpu_request: float
    cpu_limit: float | None
    memory_mean: float
    memory_request: float
    memory_limit: float
    throttled: float = 0.01
    gpu_util: float = 50.0
    gpu_temperature: float = 60.0
    gpu_memory_used: float = 20000.0  # MiB, held by the server from its start
    recent_memory: float | None = None  # working set in the last hour
    oom_kills: int = 0  # in the last hour
    xid: int = 0  # an XID error in the last hour


@dataclass
class ResourceScenario:
    history: MetricsHistory
    namespace: str
    at: datetime
    #: Per model, per pod: per-minute CPU usage (cores), and the working set at each sample (bytes).
    cpu: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    memory: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def pods(self, model: str) -> list[str]:
        return list(self.cpu[model])


LOADS: dict[str, ModelLoad] = {
    "pressured": ModelLoad(
        cpu_mean=0.9,
        cpu_request=0.5,
        cpu_limit=1.0,
        memory_mean=900 * MIB,
        memory_request=1024 * MIB,
        memory_limit=1024 * MIB,
        throttled=0.4,
        gpu_util=85.0,
        gpu_temperature=91.0,
        recent_memory=1000 * MIB,
        oom_kills=2,
        xid=79,
    ),
    "idle": ModelLoad(
        cpu_mean=0.03,
        cpu_request=2.0,
        cpu_limit=None,
        memory_mean=300 * MIB,
        memory_request=4096 * MIB,
        memory_limit=4096 * MIB,
        gpu_util=3.0,
    ),
    "healthy": ModelLoad(
        cpu_mean=0.35, cpu_request=0.5, cpu_limit=1.0, memory_mean=600 * MIB, memory_request=768 * MIB, memory_limit=1024 * MIB
    ),
}


def _cumulative(per_minute: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(per_minute)])


def resource_scenario(end: datetime, *, days: int = 2, seed: int = 11, namespace: str = "ml") -> ResourceScenario:
    """``days`` and an hour of history up to ``end`` (floored to 5 minutes), two pods a model."""
    at = floor_time(end, timedelta(minutes=5))
    history = MetricsHistory(at - timedelta(days=days, hours=1), at, STEP, seed=seed)
    scenario = ResourceScenario(history=history, namespace=namespace, at=at)
    rng = np.random.default_rng(seed)
    count = len(history.times)
    recent = np.array([t > at - timedelta(hours=1) for t in history.times])
    for model, load in LOADS.items():
        scenario.cpu[model], scenario.memory[model] = {}, {}
        pods = [f"{model}-7d9f8c6b5-{suffix}" for suffix in ("x2k4p", "q8w7z")]
        for pod in pods:
            cpu = rng.gamma(8.0, load.cpu_mean / 8.0, count - 1)
            memory = load.memory_mean * (1 + 0.05 * rng.standard_normal(count))
            if load.recent_memory is not None:
                memory[recent] = load.recent_memory
            scenario.cpu[model][pod], scenario.memory[model][pod] = cpu, memory
            _pod(history, namespace, pod, load, cpu, memory, recent)
    # Decoys: a Deployment whose name starts like one of ours, pod-level and pause series.
    decoy = np.full(count - 1, 7.5)
    _pod(history, namespace, "healthy-canary-5f6d7c8b9-zzz99", LOADS["pressured"], decoy, np.full(count, 9e9), recent)
    pod = scenario.pods("healthy")[0]
    for container in ("", "POD"):
        labels = {"namespace": namespace, "pod": pod, "container": container}
        _series(history, "container_cpu_usage_seconds_total", labels, _cumulative(decoy * 60))
        _series(history, "container_memory_working_set_bytes", labels, np.full(count, 9e9))
    return scenario


def _series(history: MetricsHistory, name: str, labels: Mapping[str, str], values: np.ndarray) -> None:
    at_time = dict(zip(history.times, np.asarray(values, dtype=np.float64).tolist(), strict=True))
    history.gauge(name, labels, at_time.__getitem__)


def _pod(
    history: MetricsHistory,
    namespace: str,
    pod: str,
    load: ModelLoad,
    cpu: np.ndarray,
    memory: np.ndarray,
    recent: np.ndarray,
) -> None:
    labels = {"namespace": namespace, "pod": pod, "container": "server"}
    count = len(history.times)
    _series(history, "container_cpu_usage_seconds_total", labels, _cumulative(cpu * 60))
    periods = np.full(count - 1, CFS_PERIODS_PER_MINUTE)
    _series(history, "container_cpu_cfs_periods_total", labels, _cumulative(periods))
    _series(history, "container_cpu_cfs_throttled_periods_total", labels, _cumulative(periods * load.throttled))
    _series(history, "container_memory_working_set_bytes", labels, memory)
    for metric, values in (
        ("kube_pod_container_resource_requests", {"cpu": load.cpu_request, "memory": load.memory_request}),
        ("kube_pod_container_resource_limits", {"cpu": load.cpu_limit, "memory": load.memory_limit}),
    ):
        for resource, value in {**values, "nvidia_com_gpu": 1.0}.items():
            if value is not None:
                unit = {"cpu": "core", "memory": "byte"}.get(resource, "integer")
                _series(history, metric, {**labels, "resource": resource, "unit": unit}, np.full(count, value))
    # OOM kills spread over the last hour: restarts, and OOMKilled as the last reason from the first.
    restarts = np.zeros(count)
    if load.oom_kills:
        where = np.flatnonzero(recent)
        for k in range(load.oom_kills):
            restarts[where[(k + 1) * len(where) // (load.oom_kills + 1)] :] += 1
    _series(history, "kube_pod_container_status_restarts_total", labels, restarts)
    _series(
        history,
        "kube_pod_container_status_last_terminated_reason",
        {**labels, "reason": "OOMKilled"},
        (restarts > 0).astype(float),
    )
    gpu = {**labels, "gpu": "0", "UUID": f"GPU-{pod}", "modelName": "NVIDIA L4", "Hostname": "node-1"}
    _series(history, "DCGM_FI_DEV_GPU_UTIL", gpu, np.full(count, load.gpu_util))
    _series(history, "DCGM_FI_DEV_FB_USED", gpu, np.full(count, load.gpu_memory_used))
    _series(history, "DCGM_FI_DEV_FB_FREE", gpu, np.full(count, 23034.0 - load.gpu_memory_used))
    _series(history, "DCGM_FI_DEV_GPU_TEMP", gpu, np.where(recent, load.gpu_temperature, 60.0))
    _series(history, "DCGM_FI_DEV_POWER_USAGE", gpu, np.full(count, 30 + load.gpu_util))
    _series(history, "DCGM_FI_DEV_XID_ERRORS", gpu, np.where(recent, float(load.xid), 0.0))
