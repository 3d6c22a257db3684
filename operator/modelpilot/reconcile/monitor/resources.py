"""The serving pods' resources (spec.resources): the fixed plan of resource queries, figures per
container, KRR's recommendations as a Deployment patch, and the ResourcePressure and
Overprovisioned verdicts.

A failed query leaves the last figures in place and both conditions Unknown; too little
history gives no recommendation and no Overprovisioned verdict.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from modelpilot.analysis import SeriesSummary, cpu_request, memory_request, summarise
from modelpilot.api import format_duration, parse_duration
from modelpilot.api.monitor import (
    ContainerResources,
    GpuResources,
    ModelMonitorSpec,
    ModelMonitorStatus,
    Recommendation,
    ResourceCost,
    ResourcesSpec,
    ResourcesStatus,
    UsageFigures,
)

from ..promql import escape_label_value, monitor_query
from ..queries import PlannedQuery, QueryOutcome, Series
from .verdict import Verdict, failed_verdict, failure, finite

__all__ = [
    "RANGE_QUERIES",
    "RESOURCE_CONDITIONS",
    "ResourcePlan",
    "assess_resources",
    "cpu_quantity",
    "memory_quantity",
    "pod_selector",
    "recommended",
    "resource_plan",
]

RESOURCE_CONDITIONS = ("ResourcePressure", "Overprovisioned")
#: Read over the horizon, one point a step; the rest are instant queries over the window.
RANGE_QUERIES = (
    "cpuUsage",
    "cpuThrottling",
    "memoryWorkingSet",
    "gpuUtilization",
    "gpuMemoryUsed",
    "gpuMemoryFree",
    "gpuTemperature",
    "gpuPower",
)
INSTANT_QUERIES = ("resourceRequests", "resourceLimits", "restarts", "oomKills", "gpuXidErrors")
MIB = 2**20
GIB = 2**30
HOURS_A_MONTH = 720

KRR_CPU = "krr: CPU usage percentile"
KRR_CPU_LIMIT = "krr: no CPU limit"
KRR_MEMORY = "krr: peak memory plus margin"


def pod_selector(spec: ModelMonitorSpec, namespace: str) -> str:
    """The matchers of the serving pods' containers: the pods of spec.deployment by their
    ReplicaSet names (``<deployment>-<template hash>-<suffix>``) unless pods are chosen by label,
    in the monitor's own namespace, without cAdvisor's pod-level and pause-container series."""
    resources = spec.resources
    matchers = [f'namespace="{escape_label_value(namespace)}"']
    if resources.pods is None and spec.deployment is not None:
        pattern = f"{re.escape(spec.deployment.name)}-[a-z0-9]+-[a-z0-9]+"
        matchers.append(f'pod=~"{escape_label_value(pattern)}"')
    if resources.container is not None:
        matchers.append(f'container="{escape_label_value(resources.container)}"')
    else:
        matchers += ['container!=""', 'container!="POD"']
    return ",".join(matchers)


def _label_join(spec: ModelMonitorSpec, namespace: str) -> str:
    """``and`` with the pods whose labels match, where pods are chosen by label."""
    pods = spec.resources.pods
    if pods is None:
        return ""
    matchers = [f'namespace="{escape_label_value(namespace)}"'] + [
        f'label_{re.sub(r"[^a-zA-Z0-9_]", "_", key)}="{escape_label_value(value)}"'
        for key, value in sorted(pods.match_labels.items())
    ]
    return f" and on (pod) kube_pod_labels{{{','.join(matchers)}}}"


@dataclass(frozen=True)
class ResourcePlan:
    """The range queries over the horizon and the instant queries over the window."""

    ranges: list[PlannedQuery]
    instants: list[PlannedQuery]
    horizon: timedelta
    step: timedelta


def resource_plan(spec: ModelMonitorSpec, *, namespace: str, at: datetime) -> ResourcePlan | None:
    """The resource queries of one evaluation, the same number whatever the number of pods; None
    when spec.resources is off."""
    resources = spec.resources
    if not resources.enabled:
        return None
    horizon, step, window = _durations(resources)
    selector, join = pod_selector(spec, namespace), _label_join(spec, namespace)

    def planned(name: str, over: timedelta) -> PlannedQuery:
        promql = monitor_query(spec, name, version=None, namespace=namespace, window=over, selector=selector)
        assert promql is not None  # every preset has the resource queries
        return PlannedQuery(name, f"({promql}){join}" if join else promql, at)

    return ResourcePlan(
        ranges=[planned(name, step) for name in RANGE_QUERIES],
        instants=[planned(name, window) for name in INSTANT_QUERIES],
        horizon=horizon,
        step=step,
    )


def _durations(resources: ResourcesSpec) -> tuple[timedelta, timedelta, timedelta]:
    horizon = parse_duration(resources.horizon)
    return horizon, min(parse_duration(resources.step), horizon), parse_duration(resources.window)


# -- figures ------------------------------------------------------------------------------------

_Points = tuple[np.ndarray, np.ndarray]


def _points(series: Series) -> _Points:
    array = np.array(series.points, dtype=np.float64).reshape(-1, 2)
    return array[:, 0], array[:, 1]


def _by_container(outcome: QueryOutcome | None) -> dict[str, list[tuple[Mapping[str, str], _Points]]]:
    grouped: dict[str, list[tuple[Mapping[str, str], _Points]]] = defaultdict(list)
    for series in outcome.series if outcome is not None else ():
        if series.points:
            grouped[series.labels.get("container", "")].append((series.labels, _points(series)))
    return grouped


def _figures(summary: SeriesSummary | None, scale: float = 1.0) -> UsageFigures:
    if summary is None:
        return UsageFigures()
    return UsageFigures(
        current=finite(summary.current * scale), average=finite(summary.average * scale), peak=finite(summary.peak * scale)
    )


def _recent_max(series: Iterable[tuple[Mapping[str, str], _Points]], since: float, reduce: str = "max") -> float | None:
    """The worst replica's figure since ``since``: its largest point, or its mean with ``reduce="mean"``."""
    worst = None
    for _, (times, values) in series:
        recent = values[(times >= since) & np.isfinite(values)]
        if recent.size:
            figure = float(recent.max() if reduce == "max" else recent.mean())
            worst = figure if worst is None else max(worst, figure)
    return worst


def _instant(outcome: QueryOutcome | None, container: str, resource: str | None = None) -> float | None:
    """The largest value for ``container`` (and ``resource``) among the pods; None when absent."""
    values = [
        s.value
        for s in (outcome.samples if outcome is not None else ())
        if s.labels.get("container", "") == container
        and (resource is None or s.labels.get("resource") == resource)
        and math.isfinite(s.value)
    ]
    return max(values) if values else None


def _instant_sum(outcome: QueryOutcome | None, container: str) -> int | None:
    values = [
        s.value
        for s in (outcome.samples if outcome is not None else ())
        if s.labels.get("container", "") == container and math.isfinite(s.value) and s.value >= 0
    ]
    return int(round(sum(values))) if values else None


def cpu_quantity(cores: float | None) -> str | None:
    """Cores as a Kubernetes quantity in millicores, rounded up."""
    return None if cores is None else f"{max(1, math.ceil(round(cores * 1000, 6)))}m"


def recommended(container: ContainerResources, resource: str) -> float | None:
    """The recommended request of ``resource`` (cores or bytes), from its quantity."""
    for r in container.recommendations:
        if r.resource == resource and r.kind == "request" and r.recommended is not None:
            text = r.recommended
            return int(text[:-1]) / 1000 if text.endswith("m") else int(text[:-2]) * MIB
    return None


def memory_quantity(size: float | None) -> str | None:
    """Bytes as a Kubernetes quantity in MiB, rounded up."""
    return None if size is None else f"{max(1, math.ceil(round(size / MIB, 6)))}Mi"


@dataclass(frozen=True)
class _Findings:
    """What one container shows: its status entry, pressure and overprovisioning findings, and
    recommended requests (cores, bytes) when there was history enough."""

    status: ContainerResources
    pressure: list[tuple[str, str]]
    waste: list[str]
    cpu: float | None
    memory: float | None
    gpus: int


def _gpu(
    spec: ResourcesSpec, outcomes: Mapping[str, QueryOutcome], container: str, horizon: str
) -> tuple[GpuResources | None, list[tuple[str, str]], list[str]]:
    util = _by_container(outcomes.get("gpuUtilization")).get(container, [])
    used = _by_container(outcomes.get("gpuMemoryUsed")).get(container, [])
    free = _by_container(outcomes.get("gpuMemoryFree")).get(container, [])
    temperature = _by_container(outcomes.get("gpuTemperature")).get(container, [])
    power = _by_container(outcomes.get("gpuPower")).get(container, [])
    if not (util or used or temperature or power):
        return None, [], []
    devices = len({(labels.get("pod"), labels.get("gpu")) for labels, _ in [*util, *used, *temperature, *power]})
    utilization = summarise([p for _, p in util])
    held = summarise([p for _, p in used])
    free_now = summarise([p for _, p in free])
    total = held.current + free_now.current if held is not None and free_now is not None else None
    hot = summarise([p for _, p in temperature], current="max")
    pressure, waste, advice = [], [], []
    if hot is not None and hot.current >= spec.gpu_temperature:
        pressure.append(("GPUHot", f"GPU of {container} at {hot.current:.0f}C (limit {spec.gpu_temperature:g}C)"))
    xid = _instant(outcomes.get("gpuXidErrors"), container)
    if xid is not None and xid > 0:
        pressure.append(("GPUXidError", f"GPU of {container} reported XID error {xid:.0f}"))
    if utilization is not None:
        average = utilization.average / 100
        if average < spec.gpu_utilization:
            waste.append(f"GPU of {container} busy {average:.0%} of the time over {horizon} (under {spec.gpu_utilization:.0%})")
            advice.append(
                f"under-used: busy {average:.0%} on average, {utilization.peak / 100:.0%} at peak; batch requests,"
                " or share the GPU (MIG, time-slicing)"
            )
    if held is not None and total:
        advice.append(
            f"frame buffer held: {held.peak * MIB / GIB:.1f} of {total * MIB / GIB:.1f} GiB at peak; an inference server"
            " holds what its framework allocated (caching allocators, preallocation), so this is memory reserved,"
            f" not memory needed: headroom {1 - held.peak / total:.0%}"
        )
    return (
        GpuResources(
            devices=devices,
            utilization=_figures(utilization, 0.01),
            memory_used=_figures(held, MIB),
            memory_total=finite(total * MIB) if total else None,
            temperature=_figures(hot),
            power=_figures(summarise([p for _, p in power])),
            xid_error=int(xid) if xid is not None and xid > 0 else None,
            advice="; ".join(advice) or None,
        ),
        pressure,
        waste,
    )


def _container(
    spec: ResourcesSpec,
    outcomes: Mapping[str, QueryOutcome],
    container: str,
    *,
    since: float,
    enough_history: bool,
    horizon: str,
) -> _Findings:
    cpu_series = _by_container(outcomes.get("cpuUsage")).get(container, [])
    throttled_series = _by_container(outcomes.get("cpuThrottling")).get(container, [])
    memory_series = _by_container(outcomes.get("memoryWorkingSet")).get(container, [])
    requests, limits = outcomes.get("resourceRequests"), outcomes.get("resourceLimits")
    cpu_req, cpu_lim = _instant(requests, container, "cpu"), _instant(limits, container, "cpu")
    mem_req, mem_lim = _instant(requests, container, "memory"), _instant(limits, container, "memory")
    gpus = int(_instant(requests, container, "nvidia_com_gpu") or 0)
    restarts, ooms = _instant_sum(outcomes.get("restarts"), container), _instant_sum(outcomes.get("oomKills"), container)
    window = spec.window
    pressure: list[tuple[str, str]] = []
    if ooms:
        pressure.append(("OOMKilled", f"{container} was OOM-killed {ooms} times in {window}"))
    recent_memory = _recent_max(memory_series, since)
    if recent_memory is not None and mem_lim and recent_memory >= spec.memory_limit_ratio * mem_lim:
        pressure.append(
            (
                "MemoryNearLimit",
                f"{container} working set {recent_memory / MIB:.0f}Mi is {recent_memory / mem_lim:.0%} of its"
                f" {mem_lim / MIB:.0f}Mi limit (from {spec.memory_limit_ratio:.0%})",
            )
        )
    throttled = _recent_max(throttled_series, since, reduce="mean")
    if throttled is not None and throttled >= spec.throttling:
        pressure.append(
            (
                "CPUThrottled",
                f"{container} throttled in {throttled:.0%} of CFS periods over {window}"
                f" (limit {cpu_quantity(cpu_lim) or 'none'}; from {spec.throttling:.0%})",
            )
        )
    gpu, gpu_pressure, waste = _gpu(spec, outcomes, container, horizon)
    pressure += gpu_pressure
    recommendations: list[Recommendation] = []
    cpu = memory = None
    cpu_samples = np.concatenate([v for _, (_, v) in cpu_series]) if cpu_series else np.array([])
    memory_samples = np.concatenate([v for _, (_, v) in memory_series]) if memory_series else np.array([])
    if enough_history and np.isfinite(cpu_samples).any():
        cpu, level = cpu_request(cpu_samples, spec.cpu_percentile)
        recommendations.append(
            Recommendation(
                resource="cpu",
                kind="request",
                current=cpu_quantity(cpu_req),
                recommended=cpu_quantity(cpu),
                rule=f"{KRR_CPU}: p{spec.cpu_percentile * 100:g} of every replica's usage over {horizon}",
                inputs={"percentile": spec.cpu_percentile, "usageCores": level, "samples": float(cpu_samples.size)},
            )
        )
        recommendations.append(
            Recommendation(
                resource="cpu",
                kind="limit",
                current=cpu_quantity(cpu_lim),
                recommended=None,
                rule=f"{KRR_CPU_LIMIT}: a limit throttles a busy server (latency) while the request already shares CPU",
                inputs={"peakCores": float(np.nanmax(cpu_samples))},
            )
        )
        if cpu_req and cpu_req > spec.overprovisioned_factor * cpu:
            waste.append(
                f"{container} requests {cpu_quantity(cpu_req)} CPU, {cpu_req / cpu:.1f}x the recommended {cpu_quantity(cpu)}"
            )
    if enough_history and np.isfinite(memory_samples).any():
        memory, peak = memory_request(memory_samples, spec.memory_margin)
        inputs = {"peakBytes": peak, "margin": spec.memory_margin, "samples": float(memory_samples.size)}
        rule = f"{KRR_MEMORY}: peak working set over {horizon} plus {spec.memory_margin:.0%}"
        for kind, now in (("request", mem_req), ("limit", mem_lim)):
            recommendations.append(
                Recommendation(
                    resource="memory",
                    kind=kind,
                    current=memory_quantity(now),
                    recommended=memory_quantity(memory),
                    rule=rule,
                    inputs=inputs,
                )
            )
        if mem_req and mem_req > spec.overprovisioned_factor * memory:
            waste.append(
                f"{container} requests {memory_quantity(mem_req)} memory,"
                f" {mem_req / memory:.1f}x the recommended {memory_quantity(memory)}"
            )
    pods = {labels.get("pod") for labels, _ in [*cpu_series, *memory_series]}
    status = ContainerResources(
        name=container,
        pods=len(pods),
        cpu_usage=_figures(summarise([p for _, p in cpu_series])),
        cpu_request=finite(cpu_req),
        cpu_limit=finite(cpu_lim),
        cpu_throttled=_figures(summarise([p for _, p in throttled_series], current="max")),
        memory_working_set=_figures(summarise([p for _, p in memory_series])),
        memory_request=finite(mem_req),
        memory_limit=finite(mem_lim),
        restarts=restarts,
        oom_kills=ooms,
        gpu=gpu,
        recommendations=recommendations,
    )
    return _Findings(status, pressure, waste, cpu, memory, gpus)


def _patch(findings: Sequence[_Findings]) -> dict[str, object] | None:
    """A strategic merge patch of the Deployment: containers by name; ``null`` removes a CPU limit."""
    containers = []
    for f in findings:
        if f.cpu is None and f.memory is None:
            continue
        requests: dict[str, str | None] = {}
        limits: dict[str, str | None] = {}
        if f.cpu is not None:
            requests["cpu"] = cpu_quantity(f.cpu)
            if f.status.cpu_limit is not None:
                limits["cpu"] = None
        if f.memory is not None:
            requests["memory"] = limits["memory"] = memory_quantity(f.memory)
        resources = {"requests": requests, **({"limits": limits} if limits else {})}
        containers.append({"name": f.status.name, "resources": resources})
    return {"spec": {"template": {"spec": {"containers": containers}}}} if containers else None


def _cost(spec: ResourcesSpec, findings: Sequence[_Findings], replicas: int) -> ResourceCost | None:
    prices = spec.prices
    if prices is None or not replicas:
        return None
    cpu_price, memory_price, gpu_price = prices.cpu_core_hour or 0.0, prices.memory_gib_hour or 0.0, prices.gpu_hour or 0.0
    now = later = 0.0
    for f in findings:
        gpus = f.gpus * gpu_price
        now += (f.status.cpu_request or 0) * cpu_price + (f.status.memory_request or 0) / GIB * memory_price + gpus
        cpu = f.cpu if f.cpu is not None else f.status.cpu_request or 0
        memory = f.memory if f.memory is not None else f.status.memory_request or 0
        later += cpu * cpu_price + memory / GIB * memory_price + gpus
    return ResourceCost(
        current_hourly=now * replicas,
        recommended_hourly=later * replicas,
        monthly_saving=(now - later) * replicas * HOURS_A_MONTH,
    )


def _unknown_resources(previous: ModelMonitorStatus, verdict: Verdict) -> tuple[ResourcesStatus | None, Verdict, Verdict]:
    return previous.resources, verdict, verdict


def assess_resources(
    spec: ModelMonitorSpec,
    outcomes: Mapping[str, QueryOutcome] | None,
    previous: ModelMonitorStatus,
    *,
    at: datetime,
    namespace: str | None,
    batch_size_mean: float | None = None,
) -> tuple[ResourcesStatus | None, Verdict, Verdict]:
    """The resources section of status and the (ResourcePressure, Overprovisioned) verdicts."""
    resources = spec.resources
    if outcomes is None:
        blocked = Verdict("Unknown", "NotQueried", "resources were not queried in this evaluation")
        return _unknown_resources(previous, blocked)
    failed = failure(outcomes.values())
    if failed is not None:
        return _unknown_resources(previous, failed_verdict(failed, previous.last_success))
    horizon_delta, step, window = _durations(resources)
    horizon = resources.horizon
    containers = sorted({c for name in ("cpuUsage", "memoryWorkingSet") for c in _by_container(outcomes.get(name)) if c})
    if not containers:
        where = f"the pods of Deployment {spec.deployment.name}" if resources.pods is None and spec.deployment else "the pods"
        no_data = Verdict("Unknown", "NoData", f"Prometheus holds no CPU or memory series of {where} over {horizon}")
        return ResourcesStatus(horizon=horizon, batch_size_mean=batch_size_mean), no_data, no_data
    spans = [
        summary.span_seconds + step.total_seconds()
        for name in ("cpuUsage", "memoryWorkingSet")
        if (summary := summarise([p for group in _by_container(outcomes.get(name)).values() for _, p in group]))
    ]
    history = timedelta(seconds=min(max(spans), horizon_delta.total_seconds()))
    needed = min(parse_duration(resources.min_history), horizon_delta)
    enough = history >= needed
    since = at.timestamp() - window.total_seconds()
    findings = [_container(resources, outcomes, c, since=since, enough_history=enough, horizon=horizon) for c in containers[:20]]
    replicas = len({s.labels.get("pod") for s in outcomes["resourceRequests"].samples}) or None
    patch = _patch(findings)
    text = json.dumps(patch, separators=(",", ":")) if patch else None
    command = None
    if text and resources.pods is None and spec.deployment is not None and namespace:
        command = f"kubectl patch deployment {spec.deployment.name} -n {namespace} --type strategic -p '{text}'"
    status = ResourcesStatus(
        horizon=horizon,
        history=format_duration(timedelta(seconds=round(history.total_seconds()))) if history.total_seconds() >= 1 else None,
        replicas=replicas,
        containers=[f.status for f in findings],
        batch_size_mean=batch_size_mean,
        patch=text,
        command=command,
        cost=_cost(resources, findings, replicas or 0),
    )
    return status, _pressure_verdict(findings, window=resources.window), _waste_verdict(findings, enough, history, needed)


_PRESSURE_ORDER = ("OOMKilled", "MemoryNearLimit", "GPUXidError", "GPUHot", "CPUThrottled")


def _pressure_verdict(findings: Sequence[_Findings], *, window: str) -> Verdict:
    found = sorted(
        (p for f in findings for p in f.pressure), key=lambda p: _PRESSURE_ORDER.index(p[0]) if p[0] in _PRESSURE_ORDER else 99
    )
    if found:
        return Verdict("True", found[0][0], "; ".join(message for _, message in found))
    shown = ", ".join(
        f"{f.status.name}: throttled {_pct(f.status.cpu_throttled.current)}, memory {_of_limit(f.status)}" for f in findings
    )
    return Verdict("False", "NoPressure", f"no throttling, memory pressure, OOM kill or GPU error over {window} ({shown})")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _of_limit(status: ContainerResources) -> str:
    used, limit = status.memory_working_set.current, status.memory_limit
    if used is None:
        return "n/a"
    return f"{used / MIB:.0f}Mi" + (f" of {limit / MIB:.0f}Mi limit" if limit else " (no limit)")


def _waste_verdict(findings: Sequence[_Findings], enough: bool, history: timedelta, needed: timedelta) -> Verdict:
    waste = [w for f in findings for w in f.waste]
    gpu_waste = [w for w in waste if w.startswith("GPU")]
    if waste and enough:
        reason = "GPUUnderused" if gpu_waste and len(gpu_waste) == len(waste) else "RequestsAboveUse"
        return Verdict("True", reason, "; ".join(waste))
    if not enough:
        return Verdict(
            "Unknown",
            "InsufficientHistory",
            f"{format_duration(history) if history.total_seconds() >= 1 else 'no'} usage history of the"
            f" {format_duration(needed)} needed (spec.resources.minHistory)",
        )
    return Verdict("False", "RightSized", "requests within the overprovisioning factor of their recommendations")
