"""The objects a RetrainPolicy creates, built as plain manifests: the training Job with the
contract's environment, and the CanaryRelease a passing candidate is handed to."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from modelpilot.api import CANARY_RELEASE, GROUP, VERSION, SpecError, load_spec, parse_duration
from modelpilot.api.retrain import RetrainPolicySpec, RunStatus

from ..owners import PolicyRef
from .observations import RUN_TAG

__all__ = ["ROLLBACK_STEPS", "build_canary", "build_training_job"]


def build_training_job(spec: RetrainPolicySpec, owner: PolicyRef, run: RunStatus, now: datetime) -> dict[str, Any]:
    """The batch/v1 Job of one training attempt: the spec's pod template plus the contract env."""
    window = parse_duration(spec.training.data_window)
    hyper = spec.training.hyperparameters
    environment = {
        "MLFLOW_TRACKING_URI": spec.mlflow.tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": spec.experiment or f"{spec.model}-retraining",
        "MODELPILOT_MODEL_NAME": spec.model,
        "MODELPILOT_RUN_TAG": f"{RUN_TAG}={run.job}",
        "MODELPILOT_POLICY": f"{owner.namespace}/{owner.name}",
        "MODELPILOT_TRIGGER": run.trigger,
        "MODELPILOT_TRIGGER_REASON": run.reason,
        "MODELPILOT_DATA_START": (run.started - window).isoformat(),
        "MODELPILOT_DATA_END": run.started.isoformat(),
        "MODELPILOT_VALIDATION_SPLIT": str(spec.training.validation_split),
        "MODELPILOT_TEST_SPLIT": str(spec.training.test_split),
        "MODELPILOT_HYPERPARAMETERS": json.dumps(
            {"strategy": hyper.strategy, "trials": hyper.trials, "space": hyper.space}, sort_keys=True
        ),
        "MODELPILOT_EARLY_STOPPING": json.dumps(
            {"patience": spec.training.early_stopping.patience, "min_delta": spec.training.early_stopping.min_delta}
        ),
    }
    template = json.loads(json.dumps(spec.training.template))  # a deep copy of plain JSON
    pod = template.setdefault("spec", {})
    pod.setdefault("restartPolicy", "Never")
    for container in pod.get("containers", []):
        given = [e for e in container.get("env", []) if e.get("name") not in environment]
        container["env"] = [*given, *({"name": k, "value": v} for k, v in environment.items())]
    labels = {"app.kubernetes.io/managed-by": "modelpilot", "modelpilot.dev/retrain-policy": owner.name}
    template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run.job,
            "namespace": owner.namespace,
            "labels": {**labels, "modelpilot.dev/trigger": run.trigger},
            "annotations": {"modelpilot.dev/trigger-reason": run.reason[:1000], "modelpilot.dev/attempt": str(run.attempt)},
            "ownerReferences": [owner.owner_reference()],
        },
        "spec": {"backoffLimit": spec.training.backoff_limit, "template": template},
    }
    if spec.training.active_deadline:
        job["spec"]["activeDeadlineSeconds"] = int(parse_duration(spec.training.active_deadline).total_seconds())
    return job


#: A rollback moves half the traffic to the previous version's warm pods, then all of it, and
#: promotes without waiting for approval: it is the way back, not a new release.
ROLLBACK_STEPS = {"stepWeights": [50, 100], "promotion": "auto"}


def build_canary(
    spec: RetrainPolicySpec, owner: PolicyRef, version: str, *, name: str | None = None, rollback: bool = False
) -> dict[str, Any]:
    """The CanaryRelease for a candidate version, from the policy's template (for a rollback, the
    previous champion at ROLLBACK_STEPS); validated here so a template mistake is reported on the
    policy, naming the field."""
    template = dict(spec.deployment.canary_template)
    if rollback:
        template = {k: v for k, v in template.items() if k not in ("stepWeight", "maxWeight", "promote", "abort")}
        template.update(ROLLBACK_STEPS)
    body = {
        **template,
        "model": spec.model,
        "candidate": {**dict(template.get("candidate") or {}), "modelVersion": version},
        "mlflow": template.get("mlflow") or {"trackingUri": spec.mlflow.tracking_uri},
    }
    try:
        load_spec(CANARY_RELEASE, body)
    except SpecError as err:
        raise SpecError(err.field.replace("spec", "spec.deployment.canaryTemplate", 1), err.message) from None
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": CANARY_RELEASE.kind,
        "metadata": {
            "name": name or f"{owner.name}-v{version}",
            "namespace": owner.namespace,
            "labels": {"app.kubernetes.io/managed-by": "modelpilot", "modelpilot.dev/retrain-policy": owner.name},
            "ownerReferences": [owner.owner_reference()],
        },
        "spec": body,
    }
