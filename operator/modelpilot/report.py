"""A ModelMonitor evaluation as a report a person reads in a terminal (``modelpilot check``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus

__all__ = ["monitor_report", "table"]


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def monitor_report(name: str, spec: ModelMonitorSpec, status: ModelMonitorStatus) -> str:
    """Conditions first (what needs attention), then the figures behind each."""
    lines = [
        f"ModelMonitor {name}: model {spec.model.name}"
        + (f" version {status.summary.version}" if status.summary and status.summary.version else ""),
        f"evaluated at {status.last_evaluation.isoformat() if status.last_evaluation else '-'}"
        f" with {status.queries or 0} Prometheus queries",
        "",
        "Conditions",
        *table(["TYPE", "STATUS", "REASON", "MESSAGE"], ((c.type, c.status, c.reason, c.message) for c in status.conditions)),
    ]
    perf = status.performance
    if perf is not None:
        lines += [
            "",
            f"Serving (last {spec.performance.window})",
            f"  latency mean {_num(perf.latency_mean)}s  p50 {_num(perf.latency_p50)}s  p95 {_num(perf.latency_p95)}s"
            f"  p99 {_num(perf.latency_p99)}s",
            f"  throughput {_num(perf.throughput)} req/s  error rate {_num(perf.error_rate)}"
            + (f"  mean batch {_num(perf.batch_size_mean)}" if perf.batch_size_mean is not None else ""),
        ]
        if perf.desired_replicas is not None:
            lines.append(f"  replicas ready {perf.ready_replicas}/{perf.desired_replicas}")
    quality = status.quality
    if quality is not None:
        lines += ["", f"Quality (last {spec.quality.window}, {quality.samples} labelled predictions)"]
        if quality.accuracy is not None:
            lines.append(
                f"  accuracy {_num(quality.accuracy)}  F1 macro {_num(quality.f1_macro)}  weighted {_num(quality.f1_weighted)}"
                f"  precision macro {_num(quality.precision_macro)}  recall macro {_num(quality.recall_macro)}"
            )
            lines += table(
                ["CLASS", "PRECISION", "RECALL", "F1", "SUPPORT", "PREDICTED"],
                (
                    (
                        c.name,
                        _num(c.precision),
                        _num(c.recall),
                        _num(c.f1),
                        str(c.support),
                        "-" if c.predicted_share is None else f"{c.predicted_share:.1%}",
                    )
                    for c in quality.classes
                ),
            )
        else:
            lines.append(f"  too few labels (need {spec.quality.min_samples})")
    if status.features:
        drifted = sum(f.verdict == "Drift" for f in status.features)
        lines += [
            "",
            f"Data drift ({drifted}/{len(status.features)} features; window {spec.drift.window},"
            f" {spec.drift.correction} at alpha {spec.drift.alpha},"
            f" gate {spec.drift.effect_size} >= {spec.drift.effect_threshold})",
            *table(
                [
                    "FEATURE",
                    "KIND",
                    "VERDICT",
                    "PSI",
                    "BAND",
                    "PSI|H0",
                    "KS",
                    "JS",
                    "WASS",
                    "TEST",
                    "P",
                    "P ADJ",
                    "N REF",
                    "N CUR",
                ],
                (
                    (
                        f.name,
                        f.kind,
                        f.verdict,
                        _num(f.psi, 3),
                        f.psi_band or "-",
                        _num(f.psi_expected, 2),
                        _num(f.ks, 3),
                        _num(f.js, 3),
                        _num(f.wasserstein, 3),
                        f.test or "-",
                        _num(f.pvalue, 3),
                        _num(f.corrected_pvalue, 3),
                        str(f.reference_samples or "-"),
                        str(f.current_samples or "-"),
                    )
                    for f in status.features
                ),
            ),
        ]
        unseen = [f"{f.name}: {', '.join(f.unseen_categories)}" for f in status.features if f.unseen_categories]
        if unseen:
            lines.append(f"  categories unseen in the baseline: {'; '.join(unseen)}")
    label = status.label_drift
    if label is not None:
        shift = ", ".join(f"{k} {v:+.1%}" for k, v in sorted(label.class_shift.items()))
        lines += [
            "",
            f"Label drift: {label.verdict} (PSI {_num(label.psi, 3)}, p {_num(label.pvalue, 3)}); class share change: {shift}",
        ]
    trend = status.degradation
    if trend is not None:
        lines += [
            "",
            f"Degradation of {trend.metric} over {spec.degradation.horizon} ({trend.points} points of {spec.degradation.step}):"
            f" {trend.direction} (Mann-Kendall tau {_num(trend.tau, 3)}, p {_num(trend.pvalue, 3)}),"
            f" Sen's slope {_num(trend.sen_slope, 3)}/day, change {_num(trend.change, 3)}",
            "  change points: " + (", ".join(t.date().isoformat() for t in trend.change_points) or "none"),
        ]
    return "\n".join(lines) + "\n"
