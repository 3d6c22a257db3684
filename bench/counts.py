"""Benchmark 2: drift on counts, the Prometheus path: 1,000 monitors (200 with --quick) x 50
features x 20 buckets.

One cycle is what the operator's statistics cost when every monitor is due: per monitor,
``drift_from_counts`` for each feature and one ``assess_drift``. Measured in CPU time (the
operator runs the statistics in a thread; this is the CPU a cycle takes from the machine).
Beside it: scipy's ``chi2_contingency`` per feature (the library call a hand-written monitor
would make) and the floor, the same chi-square, PSI and KS arithmetic on all tables at once in
numpy, with no per-feature Python and no sparse-bin merging.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from scipy import special, stats

from modelpilot.analysis import assess_drift, drift_from_counts
from modelpilot.api.monitor import DriftSpec

from .common import Bench, Settings, measure_rounds, ratio
from .samples import profile_top

__all__ = ["run"]


def make_counts(monitors: int, features: int, categorical: int, buckets: int, seed: int = 5) -> dict[str, Any]:
    """Counts of a baseline and a current window per monitor, feature and bucket (or category).

    Windows hold 10,000 to 100,000 observations; every tenth feature drifts (a half standard
    deviation shift for numerical, a reweighting for categorical)."""
    rng = np.random.default_rng(seed)
    bounds = np.array([*np.linspace(-3.0, 3.0, buckets - 1), math.inf])
    edges = np.concatenate([[-math.inf], bounds])
    same = np.diff(stats.norm.cdf(edges))
    shifted = np.diff(stats.norm.cdf(edges, loc=0.5))
    zipf = 1.0 / np.arange(1, buckets + 1)
    zipf /= zipf.sum()
    reweighted = zipf[::-1].copy()
    n_numerical = features - categorical
    drifted = np.zeros(features, dtype=bool)
    drifted[::10] = True
    before = np.stack([same if j < n_numerical else zipf for j in range(features)])
    after = np.stack([(shifted if j < n_numerical else reweighted) if drifted[j] else before[j] for j in range(features)])
    totals_ref = rng.integers(10_000, 100_000, size=(monitors, features))
    totals_cur = rng.integers(10_000, 100_000, size=(monitors, features))
    ref = rng.multinomial(totals_ref, np.broadcast_to(before, (monitors, features, buckets))).astype(np.float64)
    cur = rng.multinomial(totals_cur, np.broadcast_to(after, (monitors, features, buckets))).astype(np.float64)
    names = [f"x{j:02d}" if j < n_numerical else f"c{j - n_numerical:02d}" for j in range(features)]
    return {
        "ref": ref,
        "cur": cur,
        "bounds": bounds,
        "names": names,
        "n_numerical": n_numerical,
        "categories": [f"k{i:02d}" for i in range(buckets)],
        "drifted": drifted,
    }


def modelpilot_cycle(data: dict[str, Any], monitors: range) -> list[dict[str, Any]]:
    """Every monitor's drift statistics and verdicts, as the reconcile step computes them."""
    spec = DriftSpec()
    common = {"min_samples": spec.min_samples, "bands": tuple(spec.psi_bands)}
    bounds = tuple(float(b) for b in data["bounds"])
    names, n_numerical, categories = data["names"], data["n_numerical"], data["categories"]
    # The reconcile step hands over tuples of floats parsed from Prometheus answers.
    ref, cur = data["ref_tuples"], data["cur_tuples"]
    results = []
    for m in monitors:
        drifts = {}
        for j, name in enumerate(names):
            if j < n_numerical:
                drifts[name] = drift_from_counts(ref[m][j], cur[m][j], kind="numerical", upper_bounds=bounds, **common)
            else:
                drifts[name] = drift_from_counts(ref[m][j], cur[m][j], kind="categorical", categories=categories, **common)
        results.append(
            assess_drift(
                drifts,
                alpha=spec.alpha,
                correction=spec.correction,
                effect_size=spec.effect_size,
                effect_threshold=spec.effect_threshold,
            )
        )
    return results


def scipy_cycle(data: dict[str, Any]) -> np.ndarray:
    """chi2_contingency per feature and Benjamini-Hochberg per monitor: corrected p-values."""
    ref, cur = data["ref"], data["cur"]
    monitors, features, _ = ref.shape
    corrected = np.empty((monitors, features))
    for m in range(monitors):
        pvalues = []
        for j in range(features):
            table = np.vstack([ref[m, j], cur[m, j]])
            pvalues.append(stats.chi2_contingency(table[:, table.sum(axis=0) > 0]).pvalue)
        corrected[m] = stats.false_discovery_control(pvalues, method="bh")
    return corrected


def floor_cycle(data: dict[str, Any], smoothing: float = 0.5) -> dict[str, np.ndarray]:
    """Chi-square with its p-value, smoothed PSI, KS D and BH across each monitor's features,
    for every table at once."""
    ref, cur = data["ref"], data["cur"]
    n_ref = ref.sum(axis=-1, keepdims=True)
    n_cur = cur.sum(axis=-1, keepdims=True)
    pooled = ref + cur
    total = n_ref + n_cur
    occupied = pooled > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_ref = n_ref * pooled / total
        expected_cur = n_cur * pooled / total
        terms = (ref - expected_ref) ** 2 / expected_ref + (cur - expected_cur) ** 2 / expected_cur
    chi2 = np.where(occupied, terms, 0.0).sum(axis=-1)
    dof = occupied.sum(axis=-1) - 1
    pvalue = special.chdtrc(dof, chi2)
    bins = ref.shape[-1]
    ref_share = (ref + smoothing) / (n_ref + smoothing * bins)
    cur_share = (cur + smoothing) / (n_cur + smoothing * bins)
    psi = ((cur_share - ref_share) * np.log(cur_share / ref_share)).sum(axis=-1)
    ks = np.abs(np.cumsum(ref, axis=-1) / n_ref - np.cumsum(cur, axis=-1) / n_cur).max(axis=-1)
    # Benjamini-Hochberg along each monitor's features.
    m = pvalue.shape[-1]
    order = np.argsort(pvalue, axis=-1)
    ranked = np.take_along_axis(pvalue, order, axis=-1) * m / np.arange(1, m + 1)
    stepped = np.minimum(np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1], 1.0)
    corrected = np.empty_like(stepped)
    np.put_along_axis(corrected, order, stepped, axis=-1)
    return {"chi2": chi2, "pvalue": pvalue, "corrected": corrected, "psi": psi, "ks": ks}


def run(settings: Settings, *, profile: bool = False, log=print) -> Bench:
    # --quick evaluates 200 monitors: the cost per feature test is the same, the cycle a fifth.
    monitors, features, categorical, buckets = (200 if settings.quick else 1000), 50, 10, 20
    tests = monitors * features
    bench = Bench(
        "drift_counts",
        f"2. Drift on counts (Prometheus path): {monitors:,} monitors x {features} features x {buckets} buckets, "
        f"CPU time per cycle",
        header=("contender", "CPU per cycle, median [min-max]", "per feature test", "x modelpilot", "same verdicts"),
    )
    began = time.perf_counter()
    data = make_counts(monitors, features, categorical, buckets)
    data["ref_tuples"] = [[tuple(row.tolist()) for row in monitor] for monitor in data["ref"]]
    data["cur_tuples"] = [[tuple(row.tolist()) for row in monitor] for monitor in data["cur"]]
    log(f"  data: {tests:,} tables ({time.perf_counter() - began:.1f}s to generate)")
    alpha = DriftSpec().alpha

    timings, last = measure_rounds(
        {
            "modelpilot": lambda: modelpilot_cycle(data, range(monitors)),
            "scipy": lambda: scipy_cycle(data),
            "floor": lambda: floor_cycle(data),
        },
        repeats=settings.repeats,
        warmup=settings.warmup,
        clock=time.process_time,
    )
    verdicts, scipy_corrected, floor = last["modelpilot"], last["scipy"], last["floor"]
    log(f"  modelpilot: {timings['modelpilot']}; scipy: {timings['scipy']}; floor: {timings['floor']}")
    if profile:
        bench.figures["profile_modelpilot"] = profile_top(lambda: modelpilot_cycle(data, range(50)))

    names = data["names"]
    mp_significant = np.array([[v[name].corrected_pvalue < alpha for name in names] for v in verdicts])
    mp_drift = np.array([[bool(v[name].drifted) for name in names] for v in verdicts])
    floor_significant = floor["corrected"] < alpha
    scipy_significant = scipy_corrected < alpha
    floor_drift = floor_significant & (floor["psi"] >= DriftSpec().effect_threshold)
    expected = np.broadcast_to(data["drifted"], mp_drift.shape)

    mp = timings["modelpilot"].median
    rows = (
        (
            "modelpilot (drift_from_counts per feature + assess_drift per monitor)",
            "modelpilot",
            f"{int((mp_drift == expected).sum()):,}/{tests:,} as constructed",
        ),
        (
            "scipy chi2_contingency per feature + BH (test only)",
            "scipy",
            f"{int((scipy_significant == mp_significant).sum()):,}/{tests:,} tests",
        ),
        (
            "floor: chi2 + PSI + KS + BH on all tables at once (numpy)",
            "floor",
            f"{int((floor_drift == mp_drift).sum()):,}/{tests:,} verdicts",
        ),
    )
    for label, key, agreement in rows:
        timing = timings[key]
        bench.rows.append(
            (
                label,
                str(timing),
                f"{timing.median / tests * 1e6:.1f} µs",
                f"{ratio(timing.median, mp):.3f}",
                agreement,
            )
        )
    per_test = mp / tests
    bench.notes.append(
        f"modelpilot: {mp:.2f} s CPU per cycle of {monitors:,} monitors = {mp / monitors * 1e3:.1f} ms per monitor "
        f"= {per_test * 1e6:.0f} µs per feature test; modelpilot / floor = {ratio(mp, timings['floor'].median):.0f}"
    )
    bench.notes.append(
        f"{features - categorical} numerical features (20 histogram buckets) and {categorical} categorical "
        f"(20 categories) per monitor, 10,000-100,000 observations per window, every tenth feature drifted"
    )
    bench.figures.update(
        {
            "monitors": monitors,
            "features": features,
            "buckets": buckets,
            "cpu_seconds": {k: t.median for k, t in timings.items()},
            "timings": {k: vars(t) | {"runs": list(t.runs)} for k, t in timings.items()},
            "modelpilot_us_per_feature_test": per_test * 1e6,
            "modelpilot_over_floor": ratio(mp, timings["floor"].median),
            "modelpilot_over_scipy": ratio(mp, timings["scipy"].median),
        }
    )
    bench.result = ("drift_counts_cpu_seconds_per_cycle", f"{mp:.2f}")
    return bench
