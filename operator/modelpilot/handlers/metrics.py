"""The operator's own /metrics: Collectors over the latest state of each resource.

Alert rules fire on these gauges, so their names and labels are part of the public surface:
every monitor gauge carries namespace, monitor and model; feature gauges add feature.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from modelpilot.api import Condition
from modelpilot.api.monitor import ContainerResources, ModelMonitorStatus
from modelpilot.reconcile.monitor.resources import recommended

__all__ = ["MONITORS", "MonitorResults", "ResourceStates", "STATES"]

ResourceKey = tuple[str, str, str]  # kind, namespace, name


class ResourceStates(Collector):
    """Conditions of every resource this operator handles, exported like kube-state-metrics does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conditions: dict[ResourceKey, list[Condition]] = {}
        self._ticks: dict[ResourceKey, int] = {}

    def update(self, kind: str, namespace: str, name: str, conditions: list[Condition]) -> None:
        with self._lock:
            self._conditions[(kind, namespace, name)] = list(conditions)

    def ticked(self, kind: str, namespace: str, name: str, conditions: list[Condition]) -> None:
        """A tick decided and wrote the resource's status: count it, and keep its conditions."""
        with self._lock:
            key = (kind, namespace, name)
            self._conditions[key] = list(conditions)
            self._ticks[key] = self._ticks.get(key, 0) + 1

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._conditions.pop((kind, namespace, name), None)
            self._ticks.pop((kind, namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        family = GaugeMetricFamily(
            "modelpilot_resource_condition",
            "1 for the status each condition of a modelpilot resource has now, 0 for the other statuses.",
            labels=["kind", "namespace", "name", "condition", "status"],
        )
        with self._lock:
            snapshot = list(self._conditions.items())
            ticks = list(self._ticks.items())
        for (kind, namespace, name), conditions in snapshot:
            for condition in conditions:
                for status in ("True", "False", "Unknown"):
                    family.add_metric([kind, namespace, name, condition.type, status], 1.0 if condition.status == status else 0.0)
        yield family
        counter = CounterMetricFamily(
            "modelpilot_resource_ticks",
            "Ticks that decided a resource's status in this operator process (observed, decided, written).",
            labels=["kind", "namespace", "name"],
        )
        for key, count in ticks:
            counter.add_metric(list(key), float(count))
        yield counter


STATES = ResourceStates()


_MODEL_GAUGES = (
    ("modelpilot_model_accuracy", "Accuracy over the quality window.", lambda s: s.quality and s.quality.accuracy),
    ("modelpilot_model_f1", "Macro F1 over the quality window.", lambda s: s.quality and s.quality.f1_macro),
    ("modelpilot_model_precision", "Macro precision over the quality window.", lambda s: s.quality and s.quality.precision_macro),
    ("modelpilot_model_recall", "Macro recall over the quality window.", lambda s: s.quality and s.quality.recall_macro),
    (
        "modelpilot_model_quality_samples",
        "Labelled predictions in the quality window: quality alerts need enough of them.",
        lambda s: s.quality and s.quality.samples,
    ),
    (
        "modelpilot_model_latency_p50_seconds",
        "Latency p50 over the performance window.",
        lambda s: s.performance and s.performance.latency_p50,
    ),
    (
        "modelpilot_model_latency_p95_seconds",
        "Latency p95 over the performance window.",
        lambda s: s.performance and s.performance.latency_p95,
    ),
    (
        "modelpilot_model_latency_p99_seconds",
        "Latency p99 over the performance window.",
        lambda s: s.performance and s.performance.latency_p99,
    ),
    (
        "modelpilot_model_error_rate",
        "Error rate over the performance window.",
        lambda s: s.performance and s.performance.error_rate,
    ),
    (
        "modelpilot_model_throughput",
        "Requests per second over the performance window.",
        lambda s: s.performance and s.performance.throughput,
    ),
    (
        "modelpilot_label_drift_pvalue",
        "p-value of the prediction-class distribution test.",
        lambda s: s.label_drift and s.label_drift.pvalue,
    ),
    (
        "modelpilot_degradation_slope",
        "Sen's slope of the quality metric per day.",
        lambda s: s.degradation and s.degradation.sen_slope,
    ),
    ("modelpilot_monitor_consecutive_failures", "Evaluations in a row with a failed query.", lambda s: s.consecutive_failures),
    (
        "modelpilot_monitor_last_evaluation_timestamp_seconds",
        "When the latest evaluation ran (Unix time): the gauges above are its findings.",
        lambda s: s.last_evaluation and s.last_evaluation.timestamp(),
    ),
)
_FEATURE_GAUGES = (
    ("modelpilot_feature_psi", "Population stability index of a feature, current window against baseline.", lambda f: f.psi),
    (
        "modelpilot_feature_drift_pvalue",
        "Multiple-testing corrected p-value of a feature's drift test.",
        lambda f: f.corrected_pvalue,
    ),
    (
        "modelpilot_feature_drifted",
        "1 when a feature drifts (corrected test and effect size agree).",
        lambda f: {"Drift": 1.0, "NoDrift": 0.0}.get(f.verdict),
    ),
    (
        "modelpilot_feature_samples",
        "Observations of a feature in the current drift window: drift alerts need enough of them.",
        lambda f: f.current_samples,
    ),
)
_CLASS_GAUGES = (
    (
        "modelpilot_class_prediction_share",
        "Fraction of the quality window's predictions that were this class.",
        lambda c: c.predicted_share,
    ),
    ("modelpilot_class_precision", "Precision of a class over the quality window.", lambda c: c.precision),
    ("modelpilot_class_recall", "Recall of a class over the quality window.", lambda c: c.recall),
)

_CONTAINER_GAUGES: tuple[tuple[str, str, Callable[[ContainerResources], float | None]], ...] = (
    ("modelpilot_resource_cpu_usage_cores", "CPU cores a replica of a container uses now.", lambda c: c.cpu_usage.current),
    ("modelpilot_resource_cpu_request_cores", "CPU request of a container, cores.", lambda c: c.cpu_request),
    (
        "modelpilot_resource_cpu_recommended_cores",
        "Recommended CPU request of a container, cores (spec.resources rule).",
        lambda c: recommended(c, "cpu"),
    ),
    (
        "modelpilot_resource_cpu_throttled_ratio",
        "Fraction of CFS periods throttled, worst replica, latest step.",
        lambda c: c.cpu_throttled.current,
    ),
    (
        "modelpilot_resource_memory_working_set_bytes",
        "Memory working set of a replica of a container now.",
        lambda c: c.memory_working_set.current,
    ),
    ("modelpilot_resource_memory_limit_bytes", "Memory limit of a container.", lambda c: c.memory_limit),
    (
        "modelpilot_resource_memory_recommended_bytes",
        "Recommended memory request and limit of a container (spec.resources rule).",
        lambda c: recommended(c, "memory"),
    ),
    ("modelpilot_resource_oom_kills", "OOM kills of a container in spec.resources.window.", lambda c: c.oom_kills),
    (
        "modelpilot_resource_gpu_utilization_ratio",
        "Fraction of time a container's GPUs were busy, latest step.",
        lambda c: c.gpu.utilization.current if c.gpu else None,
    ),
    (
        "modelpilot_resource_gpu_temperature_celsius",
        "Hottest GPU of a container, latest step.",
        lambda c: c.gpu.temperature.current if c.gpu else None,
    ),
)


class MonitorResults(Collector):
    """The latest findings of every ModelMonitor as gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], tuple[str, ModelMonitorStatus]] = {}

    def update(self, namespace: str, name: str, model: str, status: ModelMonitorStatus) -> None:
        with self._lock:
            self._results[(namespace, name)] = (model, status)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._results.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            snapshot = list(self._results.items())
        labels = ["namespace", "monitor", "model"]
        for metric, help_text, read in _MODEL_GAUGES:
            family = GaugeMetricFamily(metric, help_text, labels=labels)
            for (namespace, name), (model, status) in snapshot:
                value = read(status)
                if value is not None:
                    family.add_metric([namespace, name, model], float(value))
            yield family
        for metric, help_text, read in _FEATURE_GAUGES:
            family = GaugeMetricFamily(metric, help_text, labels=[*labels, "feature"])
            for (namespace, name), (model, status) in snapshot:
                for feature in status.features:
                    value = read(feature)
                    if value is not None:
                        family.add_metric([namespace, name, model, feature.name], float(value))
            yield family
        for metric, help_text, read in _CLASS_GAUGES:
            family = GaugeMetricFamily(metric, help_text, labels=[*labels, "class"])
            for (namespace, name), (model, status) in snapshot:
                for class_ in status.quality.classes if status.quality else ():
                    value = read(class_)
                    if value is not None:
                        family.add_metric([namespace, name, model, class_.name], float(value))
            yield family
        for metric, help_text, read_container in _CONTAINER_GAUGES:
            family = GaugeMetricFamily(metric, help_text, labels=[*labels, "container"])
            for (namespace, name), (model, status) in snapshot:
                for container in status.resources.containers if status.resources else ():
                    value = read_container(container)
                    if value is not None:
                        family.add_metric([namespace, name, model, container.name], float(value))
            yield family


MONITORS = MonitorResults()
