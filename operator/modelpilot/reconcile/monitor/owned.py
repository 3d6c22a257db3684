"""Objects a ModelMonitor owns: its PrometheusRule and its dashboards.

Each is wanted or not by the spec, carries the hash of what it was generated from, and is
applied only when the hash it carries differs (level-triggered: a deleted or edited object is
put back at the next evaluation). Each has a condition saying whether it is in place, and the
rule's also whether any Prometheus loads it (its ruleSelector), where that can be read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelpilot.api import GROUP
from modelpilot.api.monitor import ModelMonitorSpec

from ..owners import MonitorRef
from .verdict import Verdict

__all__ = [
    "CONFIG_MAP",
    "GRAFANA_DASHBOARD",
    "HASH_ANNOTATION",
    "OWNED_CONDITIONS",
    "PROMETHEUS_RULE",
    "ApplyObject",
    "DeleteObject",
    "OwnedAction",
    "OwnedKind",
    "OwnedView",
    "PrometheusView",
    "RuleAudience",
    "label_selector_matches",
    "owned_verdicts",
    "with_owner_and_hash",
]

HASH_ANNOTATION = f"{GROUP}/generated-hash"


@dataclass(frozen=True)
class OwnedKind:
    api_version: str
    kind: str
    plural: str
    #: The condition that reports on objects of this kind.
    condition: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


PROMETHEUS_RULE = OwnedKind("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules", "AlertRules")
CONFIG_MAP = OwnedKind("v1", "ConfigMap", "configmaps", "Dashboard")
GRAFANA_DASHBOARD = OwnedKind("grafana.integreatly.org/v1beta1", "GrafanaDashboard", "grafanadashboards", "Dashboard")
OWNED_CONDITIONS = ("AlertRules", "Dashboard")


@dataclass(frozen=True)
class OwnedView:
    """What the cluster holds of one owned object."""

    served: bool | None  # the kind's API is served (its CRD installed); None when that could not be read
    hash: str | None = None  # the hash annotation of the object; None when there is no object
    exists: bool = False
    error: str | None = None  # why it could not be read, or why the last apply failed


@dataclass(frozen=True)
class PrometheusView:
    """A Prometheus (monitoring.coreos.com/v1) and the rules it loads."""

    namespace: str
    name: str
    rule_selector: Mapping[str, Any] | None  # None selects no rules (the prometheus-operator's rule)
    rule_namespace_selector: Mapping[str, Any] | None  # None: its own namespace only


@dataclass(frozen=True)
class RuleAudience:
    """The Prometheus objects of the cluster and the labels of the monitor's namespace."""

    prometheuses: Sequence[PrometheusView] | None  # None when they could not be listed
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class ApplyObject:
    kind: OwnedKind
    body: Mapping[str, Any]


@dataclass(frozen=True)
class DeleteObject:
    kind: OwnedKind
    namespace: str
    name: str


OwnedAction = ApplyObject | DeleteObject


def with_owner_and_hash(body: Mapping[str, Any], owner: MonitorRef) -> dict[str, Any]:
    """``body`` with the monitor as its controller and the hash of its content as an annotation."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    metadata = dict(body["metadata"])
    metadata["annotations"] = {**metadata.get("annotations", {}), HASH_ANNOTATION: digest}
    metadata["ownerReferences"] = [owner.owner_reference()]
    return {**body, "metadata": metadata}


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) selects ``labels``;
    an empty selector selects everything, a missing one nothing."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # an operator Kubernetes does not know selects nothing
    return True


def _loaders(audience: RuleAudience, namespace: str, rule_labels: Mapping[str, str]) -> list[str]:
    loaders = []
    for prometheus in audience.prometheuses or ():
        in_scope = (
            prometheus.namespace == namespace
            if prometheus.rule_namespace_selector is None
            else label_selector_matches(prometheus.rule_namespace_selector, audience.namespace_labels)
        )
        if in_scope and label_selector_matches(prometheus.rule_selector, rule_labels):
            loaders.append(f"{prometheus.namespace}/{prometheus.name}")
    return loaders


def _in_place(kind: OwnedKind, body: Mapping[str, Any], view: OwnedView) -> tuple[Verdict, list[OwnedAction]]:
    name = body["metadata"]["name"]
    if view.served is None:
        return Verdict("Unknown", "ApiError", f"cannot read {kind.kind} {name}: {view.error}"), []
    if not view.served:
        return Verdict("False", "CRDNotInstalled", f"the {kind.kind} CRD ({kind.api_version}) is not installed"), []
    wanted = body["metadata"]["annotations"][HASH_ANNOTATION]
    if view.hash != wanted:
        failed = f"; the last apply failed: {view.error}" if view.error else ""
        return Verdict("Unknown", "Applying", f"{kind.kind} {name} is being written{failed}"), [ApplyObject(kind, body)]
    return Verdict("True", "Applied", f"{kind.kind} {name} is up to date"), []


def owned_verdicts(
    spec: ModelMonitorSpec,
    wanted: Mapping[OwnedKind, Mapping[str, Any]],
    views: Mapping[OwnedKind, OwnedView],
    audience: RuleAudience | None,
    *,
    namespace: str,
    names: Callable[[OwnedKind], str],
) -> tuple[dict[str, Verdict | None], list[OwnedAction]]:
    """The owned objects' conditions (None: remove it) and the writes that bring them in place.

    ``wanted`` holds the bodies the spec asks for; ``views`` what the cluster holds of every kind
    observed, wanted or not (an unwanted one that exists is deleted)."""
    verdicts: dict[str, Verdict | None] = {}
    actions: list[OwnedAction] = []
    for kind, view in views.items():
        if kind in wanted:
            continue
        if view.exists:
            actions.append(DeleteObject(kind, namespace, names(kind)))
        verdicts.setdefault(kind.condition, None)
    for kind, body in wanted.items():
        seen = views.get(kind)
        if seen is None:
            continue  # not observed this time
        verdict, writes = _in_place(kind, body, seen)
        actions += writes
        if kind is PROMETHEUS_RULE and verdict.status == "True" and audience is not None:
            verdict = _audience_verdict(body, audience, namespace, verdict)
        earlier = verdicts.get(kind.condition)
        # Two kinds behind one condition (the dashboards): the worse one speaks.
        if earlier is None or _rank(verdict) < _rank(earlier):
            verdicts[kind.condition] = verdict
    return verdicts, actions


def _rank(verdict: Verdict) -> int:
    return {"False": 0, "Unknown": 1, "True": 2}[verdict.status]


def _audience_verdict(body: Mapping[str, Any], audience: RuleAudience, namespace: str, applied: Verdict) -> Verdict:
    name = body["metadata"]["name"]
    if audience.prometheuses is None:
        return Verdict("True", "Applied", f"{applied.message}; which Prometheus loads it cannot be read: {audience.error}")
    if not audience.prometheuses:
        return Verdict("True", "Applied", f"{applied.message}; no Prometheus object found: load it in your Prometheus")
    loaders = _loaders(audience, namespace, body["metadata"].get("labels") or {})
    if loaders:
        return Verdict("True", "Loaded", f"PrometheusRule {name} is up to date and loaded by {', '.join(loaders)}")
    seen = ", ".join(f"{p.namespace}/{p.name}" for p in audience.prometheuses)
    return Verdict(
        "False",
        "NotSelected",
        f"PrometheusRule {name} is applied but no Prometheus selects it ({seen}): set spec.alerting.ruleLabels "
        "or the operator's --rule-label to what their ruleSelector matches",
    )
