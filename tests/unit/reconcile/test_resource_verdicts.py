"""The resource plan and verdicts of a ModelMonitor, from answers made up here (no Prometheus)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus
from modelpilot.reconcile.monitor import MonitorObservations, decide_monitor
from modelpilot.reconcile.monitor.resources import RANGE_QUERIES, assess_resources, pod_selector, resource_plan
from modelpilot.reconcile.queries import QueryFailed, QueryOutcome, Sample, Series

AT = datetime(2025, 3, 1, tzinfo=UTC)
MIB = 2**20


def spec(**resources: Any) -> ModelMonitorSpec:
    return ModelMonitorSpec.model_validate(
        {
            "model": {"name": "m"},
            "deployment": {"name": "web.v2"},
            "prometheus": {"url": "http://prometheus:9090"},
            "resources": {"enabled": True, **resources},
        }
    )


def series(pod: str, values: list[float], *, hours: float, container: str = "server") -> Series:
    start = AT.timestamp() - hours * 3600
    step = hours * 3600 / max(len(values) - 1, 1)
    return Series({"pod": pod, "container": container}, tuple((start + i * step, v) for i, v in enumerate(values)))


def answers(
    *, cpu: list[float], memory: list[float], hours: float = 48, **instant: tuple[Sample, ...]
) -> dict[str, QueryOutcome]:
    outcomes = {name: QueryOutcome(name) for name in (*RANGE_QUERIES, "restarts", "oomKills", "gpuXidErrors")}
    outcomes["cpuUsage"] = QueryOutcome("cpu", series=(series("web-1", cpu, hours=hours),))
    outcomes["memoryWorkingSet"] = QueryOutcome("mem", series=(series("web-1", memory, hours=hours),))

    def sample(resource: str, value: float) -> Sample:
        return Sample({"pod": "web-1", "container": "server", "resource": resource}, value)

    outcomes["resourceRequests"] = QueryOutcome("req", samples=(sample("cpu", 2.0), sample("memory", 4096 * MIB)))
    outcomes["resourceLimits"] = QueryOutcome("lim", samples=(sample("memory", 4096 * MIB),))
    for name, samples in instant.items():
        outcomes[name] = QueryOutcome(name, samples=samples)
    return outcomes


def test_the_plan_is_the_same_queries_whatever_the_pods_and_escapes_the_deployment_name() -> None:
    plan = resource_plan(spec(), namespace="ml", at=AT)
    assert plan is not None and len(plan.ranges) + len(plan.instants) == 13
    assert 'pod=~"web\\\\.v2-[a-z0-9]+-[a-z0-9]+"' in pod_selector(spec(), "ml")
    assert all('namespace="ml"' in q.promql and 'container!="POD"' in q.promql for q in plan.ranges)
    assert resource_plan(spec(enabled=False), namespace="ml", at=AT) is None


def test_pods_by_label_join_kube_pod_labels_and_an_override_replaces_a_query() -> None:
    monitor = spec(pods={"matchLabels": {"app.kubernetes.io/name": 'we"b'}}, container="server")
    monitor = monitor.model_copy(
        update={
            "metrics": monitor.metrics.model_copy(
                update={"overrides": {"cpuUsage": "sum by (pod, container) (my_cpu{$selector})"}}
            )
        }
    )
    plan = resource_plan(monitor, namespace="ml", at=AT)
    assert plan is not None
    cpu = next(q.promql for q in plan.ranges if q.name == "cpuUsage")
    assert cpu == (
        '(sum by (pod, container) (my_cpu{namespace="ml",container="server"}))'
        ' and on (pod) kube_pod_labels{namespace="ml",label_app_kubernetes_io_name="we\\"b"}'
    )


def test_an_oversized_request_is_overprovisioned_with_krr_recommendations() -> None:
    status, pressure, over = assess_resources(
        spec(), answers(cpu=[0.1] * 100, memory=[200 * MIB] * 100), ModelMonitorStatus(), at=AT, namespace="ml"
    )
    assert (pressure.status, pressure.reason) == ("False", "NoPressure")
    assert (over.status, over.reason) == ("True", "RequestsAboveUse")
    assert "requests 2000m CPU, 20.0x the recommended 100m" in over.message
    assert status is not None and status.command is not None and "-n ml --type strategic" in status.command
    [container] = status.containers
    assert {(r.resource, r.kind): r.recommended for r in container.recommendations} == {
        ("cpu", "request"): "100m",
        ("cpu", "limit"): None,
        ("memory", "request"): "230Mi",
        ("memory", "limit"): "230Mi",
    }


def test_too_little_history_gives_no_recommendation_and_no_overprovisioned_verdict() -> None:
    status, _, over = assess_resources(
        spec(), answers(cpu=[0.1] * 10, memory=[200 * MIB] * 10, hours=3), ModelMonitorStatus(), at=AT, namespace="ml"
    )
    assert (over.status, over.reason) == ("Unknown", "InsufficientHistory")
    assert status is not None and status.containers[0].recommendations == [] and status.patch is None


def test_oom_kills_are_pressure_naming_the_count() -> None:
    kills = (Sample({"pod": "web-1", "container": "server"}, 2.0),)
    _, pressure, _ = assess_resources(
        spec(), answers(cpu=[0.1] * 100, memory=[200 * MIB] * 100, oomKills=kills), ModelMonitorStatus(), at=AT, namespace="ml"
    )
    assert (pressure.status, pressure.reason) == ("True", "OOMKilled")
    assert "OOM-killed 2 times in 1h" in pressure.message


def test_no_series_is_unknown_and_a_failed_query_keeps_the_last_figures() -> None:
    empty = {name: QueryOutcome(name) for name in answers(cpu=[0.1], memory=[1.0])}
    _, pressure, over = assess_resources(spec(), empty, ModelMonitorStatus(), at=AT, namespace="ml")
    assert (pressure.status, pressure.reason, over.reason) == ("Unknown", "NoData", "NoData")

    good, _, _ = assess_resources(
        spec(), answers(cpu=[0.1] * 100, memory=[MIB] * 100), ModelMonitorStatus(), at=AT, namespace="ml"
    )
    failing = {
        **answers(cpu=[9.0] * 100, memory=[MIB] * 100),
        "cpuThrottling": QueryOutcome("q", error=QueryFailed("Timeout", "slow", "q")),
    }
    kept, pressure, over = assess_resources(spec(), failing, ModelMonitorStatus(resources=good), at=AT, namespace="ml")
    assert kept == good
    assert (pressure.status, pressure.reason, over.status) == ("Unknown", "QueryFailed", "Unknown")


def test_the_conditions_exist_only_while_resources_are_watched() -> None:
    obs = MonitorObservations(at=AT, version=None, namespace="ml", resources=answers(cpu=[0.1] * 100, memory=[MIB] * 100))
    watched = decide_monitor(spec(), ModelMonitorStatus(), obs, generation=1, now=AT).status
    assert {"ResourcePressure", "Overprovisioned"} <= {c.type for c in watched.conditions}
    assert watched.resources is not None and watched.queries == 13
    later = MonitorObservations(at=AT + timedelta(minutes=5), version=None)
    off = decide_monitor(spec(enabled=False), watched, later, generation=2, now=AT + timedelta(minutes=5)).status
    assert not {"ResourcePressure", "Overprovisioned"} & {c.type for c in off.conditions}
    assert off.resources is None
