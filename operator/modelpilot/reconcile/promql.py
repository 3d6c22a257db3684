"""PromQL for each model server preset, and rendering templates for one model and window.

Every query aggregates across features or classes in one request (``sum by (feature, le)``),
so an evaluation costs the same number of queries whatever the number of features. Each query
returns fixed labels, which is the contract a user's override must keep:

| query | labels of the result |
| --- | --- |
| latencyBuckets | le (cumulative, as histogram buckets are) |
| latencySum | none (seconds spent, summed) |
| requests | status: `success`, anything else counts as an error |
| predictions | class |
| feedback | predicted, actual |
| featureBuckets | feature, le |
| featureCategories | feature, category |
| featureMissing | feature (missing values: None, NaN, infinite) |
| featureSums | feature, sign: `positive`/`negative` (sums of the values' magnitudes by sign) |
| batchSize | none (mean batch size) |

The resource queries (``spec.resources``) read what cAdvisor, kube-state-metrics and NVIDIA's
DCGM exporter export, whatever serves the model; their ``$selector`` holds the serving pods'
matchers (``namespace``, ``pod``, ``container``) and ``$window`` the sampling step (range
queries) or the pressure window (instant ones). Each keeps ``pod`` and ``container``, so pods
chosen by label can be joined with ``kube_pod_labels``; GPU queries add ``gpu``:

| query | unit | labels of the result |
| --- | --- | --- |
| cpuUsage, cpuThrottling, memoryWorkingSet | cores, fraction, bytes | pod, container |
| resourceRequests, resourceLimits | cores, bytes, GPUs | pod, container, resource (`cpu`, `memory`, `nvidia_com_gpu`) |
| restarts, oomKills | restarts in the window | pod, container |
| gpuUtilization, gpuMemoryUsed, gpuMemoryFree | %, MiB, MiB | pod, container, gpu |
| gpuTemperature, gpuPower, gpuXidErrors | C, W, XID code | pod, container, gpu |
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from modelpilot.api import format_duration
from modelpilot.api.monitor import QUERY_NAMES, ModelMonitorSpec

__all__ = ["PRESETS", "Preset", "QUERY_NAMES", "RESOURCE_QUERIES", "escape_label_value", "monitor_query", "render"]


# Quality and drift come from the modelpilot instrumentation, whatever serves the model.
_MODEL_DATA = {
    "predictions": "sum by (class) (increase(model_predictions_total{$selector}[$window]))",
    "feedback": "sum by (predicted, actual) (increase(model_feedback_total{$selector}[$window]))",
    "featureBuckets": "sum by (feature, le) (increase(model_feature_value_bucket{$selector}[$window]))",
    "featureCategories": "sum by (feature, category) (increase(model_feature_category_total{$selector}[$window]))",
    "featureMissing": "sum by (feature) (increase(model_feature_missing_total{$selector}[$window]))",
    # Two counters, not the histogram's _sum: a sum that can fall is no counter (see instrument.py).
    "featureSums": "sum by (feature, sign) (increase(model_feature_sum_total{$selector}[$window]))",
}


# Resources come from the cluster's exporters, whatever serves the model.
_RESOURCES = {
    "cpuUsage": "sum by (pod, container) (rate(container_cpu_usage_seconds_total{$selector}[$window]))",
    "cpuThrottling": (
        "sum by (pod, container) (increase(container_cpu_cfs_throttled_periods_total{$selector}[$window]))"
        " / sum by (pod, container) (increase(container_cpu_cfs_periods_total{$selector}[$window]))"
    ),
    "memoryWorkingSet": "max by (pod, container) (max_over_time(container_memory_working_set_bytes{$selector}[$window]))",
    "resourceRequests": "max by (pod, container, resource) (kube_pod_container_resource_requests{$selector})",
    "resourceLimits": "max by (pod, container, resource) (kube_pod_container_resource_limits{$selector})",
    "restarts": "sum by (pod, container) (increase(kube_pod_container_status_restarts_total{$selector}[$window]))",
    # Restarts whose last termination was an OOM kill (the gauge says only the latest reason).
    "oomKills": (
        "sum by (pod, container) (increase(kube_pod_container_status_restarts_total{$selector}[$window])"
        " and on (namespace, pod, container)"
        ' (kube_pod_container_status_last_terminated_reason{$selector,reason="OOMKilled"} == 1))'
    ),
    "gpuUtilization": "max by (pod, container, gpu) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{$selector}[$window]))",
    "gpuMemoryUsed": "max by (pod, container, gpu) (max_over_time(DCGM_FI_DEV_FB_USED{$selector}[$window]))",
    "gpuMemoryFree": "max by (pod, container, gpu) (min_over_time(DCGM_FI_DEV_FB_FREE{$selector}[$window]))",
    "gpuTemperature": "max by (pod, container, gpu) (max_over_time(DCGM_FI_DEV_GPU_TEMP{$selector}[$window]))",
    "gpuPower": "max by (pod, container, gpu) (avg_over_time(DCGM_FI_DEV_POWER_USAGE{$selector}[$window]))",
    "gpuXidErrors": "max by (pod, container, gpu) (max_over_time(DCGM_FI_DEV_XID_ERRORS{$selector}[$window]))",
}
RESOURCE_QUERIES: tuple[str, ...] = tuple(_RESOURCES)


@dataclass(frozen=True)
class Preset:
    """Metric names and label matchers of one model server."""

    name: str
    selector: str
    with_version: str
    queries: Mapping[str, str] = field(default_factory=dict)
    latency_unit: float = 1.0
    reports_errors: bool = True


PRESETS: dict[str, Preset] = {
    "generic": Preset(
        name="generic",
        selector='model="$model"',
        with_version=',version="$version"',
        queries={
            "latencyBuckets": "sum by (le) (increase(model_request_duration_seconds_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(model_request_duration_seconds_sum{$selector}[$window]))",
            "requests": "sum by (status) (increase(model_requests_total{$selector}[$window]))",
            "batchSize": (
                "sum(increase(model_batch_size_sum{$selector}[$window]))"
                " / sum(increase(model_batch_size_count{$selector}[$window]))"
            ),
            **_MODEL_DATA,
            **_RESOURCES,
        },
    ),
    "tfserving": Preset(
        name="tfserving",
        selector='model_name="$model"',
        with_version="",
        latency_unit=1e-6,
        queries={
            "latencyBuckets": "sum by (le) (increase(:tensorflow:serving:request_latency_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(:tensorflow:serving:request_latency_sum{$selector}[$window])) / 1e6",
            "requests": (
                "sum by (status) (label_replace(increase(:tensorflow:serving:request_count{$selector}[$window]),"
                ' "status", "success", "status", "OK"))'
            ),
            "batchSize": (
                "sum(increase(:tensorflow:serving:batching_session:processed_batch_size_sum{$selector}[$window]))"
                " / sum(increase(:tensorflow:serving:batching_session:processed_batch_size_count{$selector}[$window]))"
            ),
            **_MODEL_DATA,
            **_RESOURCES,
        },
    ),
    "triton": Preset(
        name="triton",
        selector='model="$model"',
        with_version=',version="$version"',
        queries={
            # Triton exports no latency histogram by default; its summed durations give the mean.
            "latencyBuckets": "sum by (le) (increase(nv_inference_request_duration_us_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(nv_inference_request_duration_us{$selector}[$window])) / 1e6",
            "requests": (
                'label_replace(sum(increase(nv_inference_request_success{$selector}[$window])), "status", "success", "", "")'
                ' or label_replace(sum(increase(nv_inference_request_failure{$selector}[$window])), "status", "error", "", "")'
            ),
            "batchSize": (
                "sum(increase(nv_inference_count{$selector}[$window]))"
                " / sum(increase(nv_inference_exec_count{$selector}[$window]))"
            ),
            **_MODEL_DATA,
            **_RESOURCES,
        },
        latency_unit=1e-6,
    ),
    "kserve": Preset(
        name="kserve",
        selector='model_name="$model"',
        with_version="",
        reports_errors=False,
        queries={
            "latencyBuckets": "sum by (le) (increase(request_predict_seconds_bucket{$selector}[$window]))",
            "latencySum": "sum(increase(request_predict_seconds_sum{$selector}[$window]))",
            "requests": (
                'label_replace(sum(increase(request_predict_seconds_count{$selector}[$window])), "status", "success", "", "")'
            ),
            **_MODEL_DATA,
            **_RESOURCES,
        },
    ),
}


def render(
    preset: Preset,
    name: str,
    *,
    model: str,
    version: str | None,
    namespace: str,
    window: timedelta,
    overrides: Mapping[str, str] | None = None,
    selector: str | None = None,
) -> str | None:
    """The PromQL of query ``name`` for one model and window; None when the preset has none.
    ``selector``, already escaped, replaces the model's matchers (the resource queries' pods)."""
    template = (overrides or {}).get(name) or preset.queries.get(name)
    if template is None:
        return None
    # Values go inside double-quoted PromQL strings: escaped, a crafted version cannot end the string.
    values = {
        "model": escape_label_value(model),
        "version": escape_label_value(version or ""),
        "namespace": escape_label_value(namespace),
        "window": format_duration(window),
    }
    if selector is None:
        selector = string.Template(preset.selector + (preset.with_version if version else "")).substitute(values)
    return string.Template(template).substitute({**values, "selector": selector})


def monitor_query(
    spec: ModelMonitorSpec,
    name: str,
    *,
    version: str | None,
    namespace: str,
    window: timedelta,
    selector: str | None = None,
) -> str | None:
    """Query ``name`` as a monitor's spec asks for it: its preset, with its overrides."""
    return render(
        PRESETS[spec.metrics.preset],
        name,
        model=spec.model.name,
        version=version,
        namespace=namespace,
        window=window,
        overrides=spec.metrics.overrides,
        selector=selector,
    )


def escape_label_value(value: str) -> str:
    """``value`` as the inside of a double-quoted PromQL string (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
