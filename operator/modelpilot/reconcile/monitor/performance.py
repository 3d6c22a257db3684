"""Serving performance of a ModelMonitor: latency, throughput, errors, batch size and replicas."""

from __future__ import annotations

from modelpilot.analysis import buckets_from_cumulative, histogram_quantile
from modelpilot.api import parse_duration
from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus, PerformanceStatus

from ..promql import PRESETS
from .observations import MonitorObservations
from .verdict import Verdict, failed_verdict, failure, finite, fmt

__all__ = ["health_verdict", "assess_performance"]


def assess_performance(
    spec: ModelMonitorSpec, obs: MonitorObservations, previous: ModelMonitorStatus
) -> tuple[PerformanceStatus | None, Verdict, Verdict]:
    preset = PRESETS[spec.metrics.preset]
    q = obs.current
    deployment = obs.deployment
    replicas = {
        "ready_replicas": deployment.ready if deployment else None,
        "desired_replicas": deployment.desired if deployment else None,
    }
    failed = failure(q.get(n) for n in ("latencyBuckets", "latencySum", "requests"))
    if failed is not None:
        kept = previous.performance.model_copy(update=replicas) if previous.performance else None
        verdict = failed_verdict(failed, previous.last_success)
        return kept, verdict, verdict

    window = parse_duration(spec.performance.window).total_seconds()
    bucket_samples = q["latencyBuckets"].samples if "latencyBuckets" in q else ()
    buckets = buckets_from_cumulative((float(s.labels.get("le", "+Inf")) * preset.latency_unit, s.value) for s in bucket_samples)
    count = buckets.total
    latency_sum = sum(s.value for s in q["latencySum"].samples) if "latencySum" in q else 0.0
    requests = q["requests"].samples if "requests" in q else ()
    total = sum(s.value for s in requests)
    errors = sum(s.value for s in requests if s.labels.get("status") != "success")
    errors_known = preset.reports_errors or "requests" in spec.metrics.overrides
    batch = q.get("batchSize")
    batch_mean = batch.samples[0].value if batch is not None and batch.ok and batch.samples else None

    def quantile(level: float) -> float | None:
        return finite(histogram_quantile(level, buckets)) if count > 0 else None

    performance = PerformanceStatus(
        latency_mean=latency_sum / count if count > 0 else None,
        latency_p50=quantile(0.5),
        latency_p95=quantile(0.95),
        latency_p99=quantile(0.99),
        throughput=total / window,
        error_rate=errors / total if total > 0 and errors_known else None,
        batch_size_mean=finite(batch_mean) if batch_mean is not None else None,
        **replicas,
    )
    return performance, latency_verdict(spec, performance, count), error_verdict(spec, performance, total, errors_known)


def latency_verdict(spec: ModelMonitorSpec, performance: PerformanceStatus, count: float) -> Verdict:
    limits = [
        (name, limit, observed)
        for name, limit, observed in (
            ("p99", spec.performance.latency_p99, performance.latency_p99),
            ("p95", spec.performance.latency_p95, performance.latency_p95),
        )
        if limit is not None
    ]
    if not limits:
        return Verdict("False", "NoThreshold", "no latency threshold is set")
    if count <= 0:
        return Verdict("Unknown", "NoTraffic", f"no requests in the last {spec.performance.window}")
    over = [f"{n} {fmt(v, 's')} > {fmt(limit, 's')}" for n, limit, v in limits if v is not None and v > limit]
    if over:
        return Verdict("True", "AboveThreshold", f"latency {', '.join(over)} over {spec.performance.window}")
    within = ", ".join(f"{n} {fmt(v, 's')} <= {fmt(limit, 's')}" for n, limit, v in limits)
    return Verdict("False", "WithinThreshold", f"latency {within} over {spec.performance.window}")


def error_verdict(spec: ModelMonitorSpec, performance: PerformanceStatus, total: float, known: bool) -> Verdict:
    limit = spec.performance.error_rate
    if limit is None:
        return Verdict("False", "NoThreshold", "no error-rate threshold is set")
    if not known:
        return Verdict(
            "Unknown",
            "NotExported",
            f"the {spec.metrics.preset} preset exports no error counts; override the `requests` query",
        )
    if total <= 0 or performance.error_rate is None:
        return Verdict("Unknown", "NoTraffic", f"no requests in the last {spec.performance.window}")
    rate = performance.error_rate
    if rate > limit:
        return Verdict("True", "AboveThreshold", f"error rate {rate:.2%} > {limit:.2%} of {total:.0f} requests")
    return Verdict("False", "WithinThreshold", f"error rate {rate:.2%} <= {limit:.2%} of {total:.0f} requests")


def health_verdict(obs: MonitorObservations) -> Verdict:
    deployment = obs.deployment
    if deployment is None:
        return Verdict("Unknown", "NotConfigured", "no serving Deployment is named in spec.deployment")
    if deployment.error is not None:
        return Verdict("Unknown", deployment.reason or "DeploymentUnavailable", deployment.error)
    ready, desired = deployment.ready or 0, deployment.desired or 0
    if desired == 0:
        return Verdict("False", "ScaledToZero", f"Deployment {deployment.name} wants 0 replicas")
    if ready < desired:
        return Verdict("False", "ReplicasUnavailable", f"{ready}/{desired} replicas of {deployment.name} ready")
    return Verdict("True", "ReplicasReady", f"{ready}/{desired} replicas of {deployment.name} ready")
