"""The kustomize manifests as charts/modelpilot renders them, so the operator's RBAC and
Deployment are written once, in the chart. ``python -m tests.support.chart_manifests`` rewrites
manifests/base from it and copies crds/ into it; tests/integration/test_helm_chart.py fails on
drift, and holds the hand-written ServiceMonitor beside it to the same objects.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from modelpilot.reconcile.monitor.rules import OPERATOR_RULES
from tests.support.helm import Helm
from tests.support.kube import REPO

__all__ = [
    "CHART",
    "GENERATED",
    "MIRRORED",
    "RELEASE_LABEL",
    "expected_files",
    "rendered_templates",
    "without_release_label",
    "write",
]

CHART = REPO / "charts" / "modelpilot"
RELEASE = "modelpilot"
NAMESPACE = "modelpilot-system"
# Default values, and every optional template on that has a place in manifests/.
VALUES = ("--set", "serviceMonitor.enabled=true")
# Templates whose rendering is the file, byte for byte.
GENERATED = {
    "serviceaccount.yaml": "manifests/base/serviceaccount.yaml",
    "rbac.yaml": "manifests/base/rbac.yaml",
    "aggregate-roles.yaml": "manifests/base/aggregate-roles.yaml",
    "deployment.yaml": "manifests/base/deployment.yaml",
    "service.yaml": "manifests/base/service.yaml",
    "validatingadmissionpolicy.yaml": "manifests/policy/validatingadmissionpolicy.yaml",
}
# Templates whose objects a hand-written file holds too, without the release label.
MIRRORED = {"servicemonitor.yaml": "manifests/monitoring/servicemonitor.yaml"}
RELEASE_LABEL = "app.kubernetes.io/instance"
HEADER = "# Generated from charts/modelpilot by `python -m tests.support.chart_manifests`: edit the chart.\n"
SOURCE = re.compile(rf"# Source: {CHART.name}/templates/(\S+)\n")


def rendered_templates(helm: Helm) -> dict[str, list[str]]:
    """Each template's documents, as ``helm template`` writes them, by the template's file name."""
    output = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *VALUES).stdout
    documents: dict[str, list[str]] = {}
    for document in re.split(r"^---\n", output, flags=re.MULTILINE):
        if not document.strip():
            continue
        source = SOURCE.match(document)
        if source is None:
            raise ValueError(f"helm wrote a document without its source template:\n{document[:200]}")
        documents.setdefault(source.group(1), []).append(document[source.end() :].rstrip() + "\n")
    unplaced = documents.keys() - GENERATED.keys() - MIRRORED.keys()
    if unplaced:
        raise ValueError(f"templates {sorted(unplaced)} render with the default values but have no place in manifests/")
    return documents


def expected_files(helm: Helm) -> dict[Path, str]:
    """Every file ``write`` writes, with the text it must hold."""
    files = {CHART / "crds" / crd.name: crd.read_text() for crd in sorted((REPO / "crds").glob("*.yaml"))}
    # The alerts on the operator: one rule file, for the chart's PrometheusRule and any Prometheus.
    rules = yaml.safe_dump({"groups": OPERATOR_RULES}, sort_keys=False, width=1000)
    files[CHART / "files" / "operator-rules.yaml"] = rules
    files[REPO / "manifests" / "monitoring" / "operator-rules.yaml"] = HEADER + rules
    for template, documents in rendered_templates(helm).items():
        if template in GENERATED:
            files[REPO / GENERATED[template]] = HEADER + "---\n".join(documents)
    return files


def without_release_label(value: Any) -> Any:
    """``value`` with the release label gone from every mapping: labels and selectors alike."""
    if isinstance(value, dict):
        return {key: without_release_label(item) for key, item in value.items() if key != RELEASE_LABEL}
    if isinstance(value, list):
        return [without_release_label(item) for item in value]
    return value


def write(helm: Helm) -> list[Path]:
    """Write what drifted and remove CRDs the chart holds that crds/ no longer has; returns the
    paths changed."""
    expected = expected_files(helm)
    changed = [path for path in (CHART / "crds").glob("*.yaml") if path not in expected]
    for path in changed:
        path.unlink()
    for path, text in expected.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def main() -> int:
    with tempfile.TemporaryDirectory() as home:
        for path in write(Helm(Path(home))):
            print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
