"""Benchmark 1: drift on raw samples, modelpilot beside Evidently, Alibi Detect, scipy and the floor.

Every contender gets the same arrays: F features (numerical and categorical, some drifted), n
reference and n current rows. modelpilot computes what a ModelMonitor computes per feature
(``drift_from_samples``: KS, PSI against its no-drift expectation, JS, chi-square, Wasserstein)
and the corrected, effect-gated verdict (``assess_drift``). The floor is one sort per column and
nothing else: no test on unsorted samples can do less.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from modelpilot.analysis import assess_drift, drift_from_samples
from modelpilot.api.monitor import DriftSpec

from .common import Bench, Settings, Timing, measure_rounds, ratio
from .peerenv import PeerEnv

__all__ = ["run"]

PEER_SCRIPT = Path(__file__).resolve().parent / "peer_drift.py"
# The folder holding the modelpilot package, for the same-numpy control row in the peers' venv.
SOURCE = Path(__file__).resolve().parents[1] / "operator"


def _numerical(rng: np.random.Generator, n: int) -> list[tuple[str, Callable[[], np.ndarray], Callable[[], np.ndarray]]]:
    same = [
        ("normal", lambda: rng.normal(0, 1, n)),
        ("normal_10_3", lambda: rng.normal(10, 3, n)),
        ("lognormal", lambda: rng.lognormal(0, 1, n)),
        ("uniform", lambda: rng.uniform(0, 1, n)),
        ("gamma", lambda: rng.gamma(2, 2, n)),
        ("beta", lambda: rng.beta(2, 5, n)),
        ("student_t", lambda: rng.standard_t(5, n)),
        ("exponential", lambda: rng.exponential(2, n)),
        ("bimodal", lambda: rng.normal(0, 1, n) + rng.choice([-2.0, 2.0], n)),
        ("laplace", lambda: rng.laplace(0, 1, n)),
    ]
    drifted = [
        ("normal_shift", lambda: rng.normal(0, 1, n), lambda: rng.normal(0.5, 1, n)),
        ("normal_scale", lambda: rng.normal(0, 1, n), lambda: rng.normal(0, 1.6, n)),
        ("lognormal_shift", lambda: rng.lognormal(0, 0.5, n), lambda: rng.lognormal(0.35, 0.5, n)),
        ("exponential_scale", lambda: rng.exponential(1, n), lambda: rng.exponential(1.6, n)),
    ]
    return [(f"drift_{name}", ref, cur) for name, ref, cur in drifted] + [(name, draw, draw) for name, draw in same]


def _categorical(rng: np.random.Generator, n: int) -> list[tuple[str, list[float], list[float]]]:
    def zipf(k: int) -> list[float]:
        weights = 1.0 / np.arange(1, k + 1)
        return list(weights / weights.sum())

    return [
        ("drift_cat5", [0.4, 0.25, 0.15, 0.1, 0.1], [0.2, 0.25, 0.15, 0.1, 0.3]),
        ("drift_cat8", [1 / 8] * 8, [0.25, 0.2, 0.15, 0.1, 0.1, 0.08, 0.07, 0.05]),
        ("cat3", [0.6, 0.3, 0.1], [0.6, 0.3, 0.1]),
        ("cat6", [0.3, 0.25, 0.2, 0.1, 0.1, 0.05], [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]),
        ("cat12", zipf(12), zipf(12)),
        ("cat30", zipf(30), zipf(30)),
    ]


def _cycled(described: list[tuple], count: int) -> list[tuple]:
    """The first ``count`` descriptions; more than described repeat them under new names."""
    return [
        (
            described[i % len(described)][0] + (f"_{i // len(described)}" if i >= len(described) else ""),
            *described[i % len(described)][1:],
        )
        for i in range(count)
    ]


def make_data(directory: Path, *, features: int, n: int, seed: int = 2024) -> dict[str, Any]:
    """Write the benchmark's arrays (features x rows, float64 and int64 codes) and meta.json."""
    rng = np.random.default_rng(seed)
    spec = DriftSpec()
    n_categorical = max(1, round(features * 0.3))
    numerical = _numerical(rng, n)
    categorical = _categorical(rng, n)
    numerical = _cycled(numerical, features - n_categorical)
    categorical = _cycled(categorical, n_categorical)
    num_ref = np.stack([ref() for _, ref, _ in numerical])
    num_cur = np.stack([cur() for _, _, cur in numerical])
    cat_ref = np.stack([rng.choice(len(p), size=n, p=p) for _, p, _ in categorical]).astype(np.int64)
    cat_cur = np.stack([rng.choice(len(q), size=n, p=q) for _, _, q in categorical]).astype(np.int64)
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in (("num_ref", num_ref), ("num_cur", num_cur), ("cat_ref", cat_ref), ("cat_cur", cat_cur)):
        np.save(directory / f"{name}.npy", array)
    meta = {
        "n": n,
        "numerical": [name for name, *_ in numerical],
        "categorical": [name for name, *_ in categorical],
        "drifted": [name for name, *_ in (*numerical, *categorical) if name.startswith("drift_")],
        # What the ModelMonitor spec defaults to, for the copy of modelpilot in the peers' venv.
        "settings": {
            "alpha": spec.alpha,
            "correction": spec.correction,
            "effect_size": spec.effect_size,
            "effect_threshold": spec.effect_threshold,
            "min_samples": spec.min_samples,
            "bands": list(spec.psi_bands),
        },
    }
    (directory / "meta.json").write_text(json.dumps(meta))
    return meta


def _load(directory: Path) -> dict[str, np.ndarray]:
    return {name: np.load(directory / f"{name}.npy") for name in ("num_ref", "num_cur", "cat_ref", "cat_cur")}


def modelpilot_report(meta: dict[str, Any], arrays: dict[str, np.ndarray]):
    """What a ModelMonitor computes on raw samples, with the defaults of its spec."""
    spec = DriftSpec()
    common = {"min_samples": spec.min_samples, "bands": tuple(spec.psi_bands)}
    drifts = {}
    for i, name in enumerate(meta["numerical"]):
        drifts[name] = drift_from_samples(arrays["num_ref"][i], arrays["num_cur"][i], kind="numerical", **common)
    for i, name in enumerate(meta["categorical"]):
        drifts[name] = drift_from_samples(arrays["cat_ref"][i], arrays["cat_cur"][i], kind="categorical", **common)
    verdicts = assess_drift(
        drifts,
        alpha=spec.alpha,
        correction=spec.correction,
        effect_size=spec.effect_size,
        effect_threshold=spec.effect_threshold,
    )
    return drifts, verdicts


def scipy_tests(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """The reference: scipy's KS and chi-square per feature, Benjamini-Hochberg across them.
    Returns (p-value, corrected p-value) per feature."""
    pvalues = {}
    for i, name in enumerate(meta["numerical"]):
        pvalues[name] = float(stats.ks_2samp(arrays["num_ref"][i], arrays["num_cur"][i]).pvalue)
    for i, name in enumerate(meta["categorical"]):
        ref, cur = arrays["cat_ref"][i], arrays["cat_cur"][i]
        size = int(max(ref.max(), cur.max())) + 1
        table = np.vstack([np.bincount(ref, minlength=size), np.bincount(cur, minlength=size)])
        table = table[:, table.sum(axis=0) > 0]
        pvalues[name] = float(stats.chi2_contingency(table).pvalue)
    names = list(pvalues)
    corrected = stats.false_discovery_control([pvalues[n] for n in names], method="bh")
    return {n: (pvalues[n], float(c)) for n, c in zip(names, corrected)}


def floor(arrays: dict[str, np.ndarray]) -> None:
    for name in ("num_ref", "num_cur", "cat_ref", "cat_cur"):
        for column in arrays[name]:
            np.sort(column)


def profile_top(run: Callable[[], Any], lines: int = 14) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
    text = out.getvalue()
    return text[text.find("ncalls") :].rstrip()


def _names(flags: dict[str, bool]) -> list[str]:
    return sorted(name for name, drifted in flags.items() if drifted)


def run(settings: Settings, peers: PeerEnv | str, *, profile: bool = False, log=print) -> Bench:
    features, n = 20, (100_000 if settings.quick else 1_000_000)
    bench = Bench(
        "drift_samples",
        f"1. Drift on raw samples: {features} features x {n:,} reference + {n:,} current rows",
        header=("contender", "median [min-max]", "x modelpilot", "drifted features", "same verdicts"),
    )
    alpha = DriftSpec().alpha
    with tempfile.TemporaryDirectory(prefix="modelpilot-bench-samples-") as tmp:
        directory = Path(tmp)
        began = time.perf_counter()
        meta = make_data(directory, features=features, n=n)
        arrays = _load(directory)
        log(
            f"  data: {len(meta['numerical'])} numerical + {len(meta['categorical'])} categorical features, "
            f"{len(meta['drifted'])} drifted ({time.perf_counter() - began:.1f}s to generate)"
        )

        timings, last = measure_rounds(
            {
                "modelpilot": lambda: modelpilot_report(meta, arrays),
                "scipy": lambda: scipy_tests(meta, arrays),
                "floor": lambda: floor(arrays),
            },
            repeats=settings.repeats,
            warmup=settings.warmup,
        )
        (drifts, verdicts), reference = last["modelpilot"], last["scipy"]
        log(f"  modelpilot: {timings['modelpilot']}; scipy: {timings['scipy']}; floor: {timings['floor']}")
        if profile:
            bench.figures["profile_modelpilot"] = profile_top(lambda: modelpilot_report(meta, arrays))
        arrays.clear()  # free the memory before the peers load their copy

        peer_results: dict[str, Any] = {}
        if isinstance(peers, str):
            peer_error = peers
        else:
            out = directory / "peers.json"
            completed = peers.run(
                str(PEER_SCRIPT),
                str(directory),
                str(settings.repeats),
                str(settings.warmup),
                str(out),
                str(SOURCE),
                timeout=7200,
            )
            peer_error = None if out.exists() else f"peer script failed: {completed.stderr[-2000:]}"
            if out.exists():
                peer_results = json.loads(out.read_text())
                bench.figures["peer_versions"] = peer_results.get("versions", {})

    mp_drift = {name: bool(v.drifted) for name, v in verdicts.items()}
    mp_significant = {name: bool(v.corrected_pvalue < alpha) for name, v in verdicts.items()}
    sp_significant = {name: corrected < alpha for name, (_, corrected) in reference.items()}
    expected = set(meta["drifted"])

    def agrees(flags: dict[str, bool]) -> str:
        return "yes" if _names(flags) == _names(sp_significant) else "NO"

    mp_time = timings["modelpilot"].median
    bench.rows.append(
        (
            "modelpilot (drift_from_samples per feature + assess_drift)",
            str(timings["modelpilot"]),
            "1",
            f"{sum(mp_drift.values())}/{features}",
            agrees(mp_drift),
        )
    )
    versions = bench.figures.get("peer_versions", {})
    peer_ratios = {}
    for key, label in (
        ("evidently", f"Evidently {versions.get('evidently', '?')} Report([DataDriftPreset()])"),
        ("alibi", f"Alibi Detect {versions.get('alibi-detect', '?')} KSDrift + ChiSquareDrift"),
    ):
        result = peer_results.get(key)
        if result is None or "error" in result:
            why = peer_error or (result or {}).get("error", "not run")
            bench.rows.append((label, "unavailable", "", "", ""))
            bench.notes.append(f"{label}: {why}")
            continue
        timing = Timing.of(result["runs"])
        timings[key] = timing
        peer_ratios[key] = ratio(timing.median, mp_time)
        drifted = {name: bool(flag) for name, flag in result["drifted"].items()}
        bench.rows.append((label, str(timing), f"{peer_ratios[key]:.2f}", f"{sum(drifted.values())}/{features}", agrees(drifted)))
        bench.figures[f"{key}_drifted"] = _names(drifted)
        if key == "evidently":
            bench.figures["evidently_methods"] = sorted(set(result["methods"].values()))
    bench.rows.append(
        (
            "scipy ks_2samp / chi2_contingency + BH (tests only)",
            str(timings["scipy"]),
            f"{ratio(timings['scipy'].median, mp_time):.2f}",
            f"{sum(sp_significant.values())}/{features}",
            "(reference)",
        )
    )
    bench.rows.append(
        (
            f"floor: one sort per column (numpy {np.__version__})",
            str(timings["floor"]),
            f"{ratio(timings['floor'].median, mp_time):.2f}",
            "",
            "",
        )
    )
    peer_floor = peer_results.get("floor_peer_numpy")
    if peer_floor and "runs" in peer_floor:
        timing = Timing.of(peer_floor["runs"])
        bench.rows.append(
            (
                f"floor in the peers' venv (numpy {versions.get('numpy', '?')})",
                str(timing),
                f"{ratio(timing.median, mp_time):.2f}",
                "",
                "",
            )
        )
        bench.figures["floor_peer_numpy_seconds"] = timing.median
    peer_mp = peer_results.get("modelpilot_peer_numpy")
    if peer_mp and "runs" in peer_mp:
        timing = Timing.of(peer_mp["runs"])
        drifted = {name: bool(flag) for name, flag in peer_mp["drifted"].items()}
        bench.rows.insert(
            1,
            (
                f"modelpilot, same code in the peers' venv (numpy {versions.get('numpy', '?')})",
                str(timing),
                f"{ratio(timing.median, mp_time):.2f}",
                f"{sum(drifted.values())}/{features}",
                agrees(drifted),
            ),
        )
        bench.figures["modelpilot_peer_numpy_seconds"] = timing.median
        for key in peer_ratios:
            bench.figures.setdefault("peer_over_modelpilot_same_numpy", {})[key] = ratio(timings[key].median, timing.median)

    # How close modelpilot's p-values are to scipy's, where both are representable.
    gaps = [
        abs(np.log10(drifts[name].pvalue) - np.log10(p))
        for name, (p, _) in reference.items()
        if drifts[name].pvalue > 1e-300 and p > 1e-300
    ]
    floor_ratio = ratio(mp_time, timings["floor"].median)
    bench.notes.append(f"modelpilot / floor = {floor_ratio:.2f}")
    same_numpy = bench.figures.get("peer_over_modelpilot_same_numpy", {})
    for key, value in peer_ratios.items():
        bench.notes.append(
            f"{key} / modelpilot = {value:.2f}"
            + (f" (on the same numpy {versions.get('numpy', '?')}: {same_numpy[key]:.2f})" if key in same_numpy else "")
        )
    bench.notes.append(
        f"verdicts: modelpilot flags {', '.join(_names(mp_drift)) or 'none'}; drifted by construction: "
        f"{', '.join(sorted(expected))}; scipy (same BH correction, alpha {alpha:g}) flags "
        f"{', '.join(_names(sp_significant)) or 'none'}"
    )
    agreeing = sum(mp_significant[k] == sp_significant[k] for k in sp_significant)
    bench.notes.append(
        f"modelpilot's corrected-test decisions agree with scipy's on {agreeing}"
        f"/{features} features; largest |log10 p| gap {max(gaps) if gaps else 0:.3f} over {len(gaps)} finite p-value pairs"
    )
    if "evidently_methods" in bench.figures:
        bench.notes.append(f"Evidently chose: {'; '.join(bench.figures['evidently_methods'])}")
    bench.figures.update(
        {
            "features": features,
            "rows": n,
            "seconds": {k: t.median for k, t in timings.items()},
            "timings": {k: vars(t) | {"runs": list(t.runs)} for k, t in timings.items()},
            "modelpilot_over_floor": floor_ratio,
            "peer_over_modelpilot": peer_ratios,
            "modelpilot_drifted": _names(mp_drift),
            "scipy_significant": _names(sp_significant),
            "expected_drifted": sorted(expected),
            "max_log10_pvalue_gap": max(gaps) if gaps else 0.0,
        }
    )
    if same_numpy:
        # The conservative headline: each peer against modelpilot on the peers' own numpy.
        bench.result = ("drift_samples_fastest_peer_over_modelpilot", f"{min(same_numpy.values()):.2f}")
    elif peer_ratios:
        bench.result = ("drift_samples_fastest_peer_over_modelpilot", f"{min(peer_ratios.values()):.2f}")
    else:
        bench.result = ("drift_samples_modelpilot_over_floor", f"{floor_ratio:.2f}")
    return bench
