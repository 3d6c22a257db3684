"""A ModelMonitor evaluation as a report a person reads in a terminal (``modelpilot check``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modelpilot.api.monitor import ModelMonitorSpec, ModelMonitorStatus, UsageFigures

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
    if status.resources is not None:
        lines += ["", *_resources(spec, status)]
    return "\n".join(lines) + "\n"


def _figures(figures: UsageFigures, scale: float = 1.0, unit: str = "") -> str:
    parts = (figures.current, figures.average, figures.peak)
    return " / ".join("-" if v is None else f"{v * scale:.3g}{unit}" for v in parts)


def _resources(spec: ModelMonitorSpec, status: ModelMonitorStatus) -> list[str]:
    """Per container: now / average / peak, requests and limits, then the recommendations."""
    res = status.resources
    assert res is not None
    lines = [
        f"Resources (horizon {res.horizon}, history {res.history or 'none'}, replicas {res.replicas or '-'};"
        " figures per replica: now / average / peak)",
        *table(
            ["CONTAINER", "CPU CORES", "REQ", "LIMIT", "THROTTLED", "MEMORY MIB", "REQ", "LIMIT", "RESTARTS", "OOM"],
            (
                (
                    c.name,
                    _figures(c.cpu_usage),
                    _num(c.cpu_request, 3),
                    _num(c.cpu_limit, 3),
                    _figures(c.cpu_throttled, 100, "%"),
                    _figures(c.memory_working_set, 1 / 2**20),
                    _num(None if c.memory_request is None else c.memory_request / 2**20, 5),
                    _num(None if c.memory_limit is None else c.memory_limit / 2**20, 5),
                    str(c.restarts if c.restarts is not None else "-"),
                    str(c.oom_kills if c.oom_kills is not None else "-"),
                )
                for c in res.containers
            ),
        ),
    ]
    for c in res.containers:
        if c.gpu is not None:
            g = c.gpu
            lines.append(
                f"  {c.name}: {g.devices} GPU(s), busy {_figures(g.utilization, 100, '%')},"
                f" held {_figures(g.memory_used, 1 / 2**30, 'GiB')}, {_figures(g.temperature, 1, 'C')},"
                f" {_figures(g.power, 1, 'W')}" + (f", XID {g.xid_error}" if g.xid_error else "")
            )
            if g.advice:
                lines.append(f"    {g.advice}")
    recommendations = [(c.name, r) for c in res.containers for r in c.recommendations]
    if recommendations:
        lines += [
            "  Recommendations",
            *table(
                ["CONTAINER", "RESOURCE", "NOW", "SET", "RULE", "INPUTS"],
                (
                    (
                        name,
                        f"{r.resource} {r.kind}",
                        r.current or "unset",
                        r.recommended or "unset",
                        r.rule,
                        ", ".join(f"{k} {v:.4g}" for k, v in r.inputs.items()),
                    )
                    for name, r in recommendations
                ),
            ),
        ]
    elif res.containers:
        lines.append(f"  no recommendation before {spec.resources.min_history} of history")
    if res.batch_size_mean is not None:
        lines.append(f"  mean batch size {_num(res.batch_size_mean)}")
    if res.cost is not None:
        lines.append(
            f"  cost per hour {res.cost.current_hourly:.4g} now, {res.cost.recommended_hourly:.4g} as recommended"
            f" ({res.cost.monthly_saving:.4g} saved over 30 days)"
        )
    if res.command:
        lines.append(f"  apply: {res.command}")
    elif res.patch:
        lines.append(f"  patch (strategic merge, to the serving Deployment): {res.patch}")
    return lines
