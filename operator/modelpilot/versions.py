"""`modelpilot versions`: a registered model's versions at a glance, from what the registry holds
and what modelpilot tagged on each (the run's trigger, the gate's verdict, the quality a version
showed while it served, a rollback's reason)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelpilot.reconcile.retrain import (
    GATE_DETAIL_TAG,
    GATE_TAG,
    PRODUCTION_TAG_PREFIX,
    ROLLED_BACK_TAG,
    SERVED_TAG,
    TRIGGER_TAG,
)
from modelpilot.report import table
from modelpilot.sources.mlflow import ModelVersionInfo

__all__ = ["compare_lines", "describe_lines", "list_lines"]


def _production(tags: Mapping[str, str]) -> dict[str, str]:
    return {k.removeprefix(PRODUCTION_TAG_PREFIX): v for k, v in sorted(tags.items()) if k.startswith(PRODUCTION_TAG_PREFIX)}


def list_lines(versions: Sequence[ModelVersionInfo], trained: Mapping[str, Mapping[str, float]], metric: str) -> list[str]:
    """One row per version, newest first: aliases, created, trigger, gate, ``metric`` in training
    (``trained``: each version's run metrics) and in production."""
    header = ["VERSION", "ALIASES", "CREATED", "TRIGGER", "GATE", f"TRAINED {metric.upper()}", f"PRODUCTION {metric.upper()}"]
    rows = []
    for info in reversed(versions):
        tags = info.tags
        rows.append(
            (
                info.version,
                ",".join(info.aliases) or "-",
                info.created.strftime("%Y-%m-%d %H:%M") if info.created else "-",
                tags.get(TRIGGER_TAG, "-"),
                tags.get(GATE_TAG, "-") + (" (rolled back)" if ROLLED_BACK_TAG in tags else ""),
                f"{trained[info.version][metric]:.4g}" if metric in trained.get(info.version, {}) else "-",
                _production(tags).get(metric, "serving" if info.aliases else "-"),
            )
        )
    return table(header, rows)


def describe_lines(info: ModelVersionInfo, metrics: Mapping[str, float]) -> list[str]:
    """Everything known about one version."""
    tags = info.tags
    lines = [
        f"Model {info.name} version {info.version}",
        f"  aliases:  {', '.join(info.aliases) or '-'}",
        f"  created:  {info.created.isoformat() if info.created else '-'}",
        f"  status:   {info.status}",
        f"  source:   {info.source or '-'}",
        f"  run:      {info.run_id or '-'}",
        f"  trigger:  {tags.get(TRIGGER_TAG, '-')}",
        f"  gate:     {tags.get(GATE_TAG, '-')}" + (f" ({tags[GATE_DETAIL_TAG]})" if GATE_DETAIL_TAG in tags else ""),
        f"  served:   {tags.get(SERVED_TAG, 'serving now' if info.aliases else '-')}",
    ]
    if ROLLED_BACK_TAG in tags:
        lines.append(f"  rolled back: {tags[ROLLED_BACK_TAG]}")
    lines += ["", "Training metrics", *table(["METRIC", "VALUE"], ((k, f"{v:.4g}") for k, v in sorted(metrics.items())))]
    production = _production(tags)
    if production:
        lines += ["", "Production metrics", *table(["METRIC", "MEAN"], production.items())]
    return lines


def compare_lines(
    a: ModelVersionInfo, b: ModelVersionInfo, metrics_a: Mapping[str, float], metrics_b: Mapping[str, float]
) -> list[str]:
    """Training and production metrics of two versions side by side, with B minus A."""
    rows = []
    for where, left, right in (
        ("training", {k: f"{v:.4g}" for k, v in metrics_a.items()}, {k: f"{v:.4g}" for k, v in metrics_b.items()}),
        ("production", _production(a.tags), _production(b.tags)),
    ):
        for metric in sorted(left.keys() | right.keys()):
            x, y = left.get(metric), right.get(metric)
            change = f"{float(y) - float(x):+.4g}" if x is not None and y is not None else "-"
            rows.append((where, metric, x or "-", y or "-", change))
    return table(["WHERE", "METRIC", f"V{a.version}", f"V{b.version}", "CHANGE"], rows)
