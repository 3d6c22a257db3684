"""The operator's own /metrics: a Collector over the latest state of each resource."""

from __future__ import annotations

import threading
from typing import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelpilot.api import Condition

__all__ = ["ResourceStates", "STATES"]

ResourceKey = tuple[str, str, str]  # kind, namespace, name


class ResourceStates(Collector):
    """Conditions of every resource this operator handles, exported like kube-state-metrics does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conditions: dict[ResourceKey, list[Condition]] = {}

    def update(self, kind: str, namespace: str, name: str, conditions: list[Condition]) -> None:
        with self._lock:
            self._conditions[(kind, namespace, name)] = list(conditions)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._conditions.pop((kind, namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "modelpilot_resource_condition",
            "1 for the status each condition of a modelpilot resource has now, 0 for the other statuses.",
            labels=["kind", "namespace", "name", "condition", "status"],
        )
        with self._lock:
            snapshot = list(self._conditions.items())
        for (kind, namespace, name), conditions in snapshot:
            for condition in conditions:
                for status in ("True", "False", "Unknown"):
                    family.add_metric(
                        [kind, namespace, name, condition.type, status], 1.0 if condition.status == status else 0.0
                    )
        yield family


STATES = ResourceStates()
