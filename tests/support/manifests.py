"""Manifests the integration tests and the demo share."""

from __future__ import annotations

import json
from typing import Any

import yaml

from modelpilot.reconcile.pod_policy import OPT_IN_LABEL
from tests.support.kube import Cluster

__all__ = ["drift_monitor", "serving_deployment"]

MONITOR = "fraud-detector"


def drift_monitor(url: str, name: str = MONITOR, interval: str = "20s") -> dict[str, Any]:
    return {
        "apiVersion": "modelpilot.dev/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "fraud-detector", "version": {"fixed": "3"}},
            "deployment": {"name": "fraud-detector"},
            "prometheus": {"url": url, "timeout": "5s"},
            "interval": interval,
            "performance": {"window": "1h", "latencyP99": 0.5, "errorRate": 0.01},
            "quality": {"window": "1d", "minSamples": 200, "accuracy": 0.9},
            "drift": {"window": "1d", "baseline": {"offset": "35d", "window": "7d"}},
            "degradation": {"horizon": "30d", "step": "1d"},
        },
    }


def serving_deployment(cluster: Cluster, namespace: str) -> None:
    """The model's Deployment, with the status a kubelet and controller would have written."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fraud-detector", "labels": {OPT_IN_LABEL: "true"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "fraud-detector"}},
            "template": {
                "metadata": {"labels": {"app": "fraud-detector"}},
                "spec": {"containers": [{"name": "server", "image": "example/fraud-detector:3"}]},
            },
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(deployment))
    cluster.kubectl(
        "patch",
        "deployment",
        "fraud-detector",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2}}),
    )
