"""The peers' side of the raw-sample drift benchmark; runs inside the peers' virtualenv.

Usage: python -I peer_drift.py DATA_DIR REPEATS WARMUP OUT_JSON [MODELPILOT_SOURCE]

Reads the same arrays the modelpilot side reads (see bench/samples.py), runs Evidently's data
drift report and Alibi Detect's KSDrift and ChiSquareDrift as their documentation shows them,
and writes each contender's timings (warm-up excluded) and per-feature verdicts as JSON.

Alibi Detect pins numpy below 2, whose sorts are several times slower than numpy 2's. So that
no comparison mixes the libraries with the numpy under them, the floor and modelpilot's own
analysis package (pure numpy and scipy, imported from the source folder MODELPILOT_SOURCE, not
installed) run here too, on this venv's numpy. Nothing of the bench package is imported.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd


def load(data: Path):
    meta = json.loads((data / "meta.json").read_text())
    arrays = {name: np.load(data / f"{name}.npy") for name in ("num_ref", "num_cur", "cat_ref", "cat_cur")}
    return meta, arrays


def evidently_report(meta, arrays):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical, categorical = meta["numerical"], meta["categorical"]

    def frame(num, cat):
        columns = {name: num[i] for i, name in enumerate(numerical)}
        columns.update({name: cat[i] for i, name in enumerate(categorical)})
        return pd.DataFrame(columns)

    # Building the DataFrames is data loading, left out of the time; the Datasets and the
    # report are Evidently's work.
    reference = frame(arrays["num_ref"], arrays["cat_ref"])
    current = frame(arrays["num_cur"], arrays["cat_cur"])
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)

    def run():
        ref = Dataset.from_pandas(reference, data_definition=definition)
        cur = Dataset.from_pandas(current, data_definition=definition)
        # The preset with its defaults: Evidently picks each column's method by type and size.
        return Report([DataDriftPreset()]).run(cur, ref).dict()

    def read(snapshot):
        drifted, scores, methods = {}, {}, {}
        for metric in snapshot["metrics"]:
            config = metric.get("config", {})
            if not config.get("type", "").endswith("ValueDrift"):
                continue
            column, method, threshold = config["column"], config["method"], config["threshold"]
            value = float(metric["value"])
            # p-value methods drift below the threshold, distances at or above it.
            drifted[column] = value < threshold if "p_value" in method else value >= threshold
            scores[column], methods[column] = value, f"{method} (threshold {threshold:g})"
        return {"drifted": drifted, "scores": scores, "methods": methods}

    return run, read


def alibi_detectors(meta, arrays):
    from alibi_detect.cd import ChiSquareDrift, KSDrift

    # Alibi takes (instances, features) arrays; the layout change is data loading, not timed.
    num_ref = np.ascontiguousarray(arrays["num_ref"].T)
    num_cur = np.ascontiguousarray(arrays["num_cur"].T)
    cat_ref = np.ascontiguousarray(arrays["cat_ref"].T)
    cat_cur = np.ascontiguousarray(arrays["cat_cur"].T)

    def run():
        # As the docs show them: the reference at construction, p_val=0.05 and the default
        # Bonferroni correction over each detector's features.
        ks = KSDrift(num_ref, p_val=0.05).predict(num_cur, drift_type="batch", return_p_val=True)
        chi2 = ChiSquareDrift(cat_ref, p_val=0.05).predict(cat_cur, drift_type="batch", return_p_val=True)
        return ks["data"], chi2["data"]

    def read(result):
        drifted, pvalues = {}, {}
        for names, data in zip((meta["numerical"], meta["categorical"]), result):
            for name, p in zip(names, np.asarray(data["p_val"], dtype=float)):
                drifted[name] = bool(p < data["threshold"])
                pvalues[name] = float(p)
        return {"drifted": drifted, "pvalues": pvalues}

    return run, read


def floor(meta, arrays):
    def run():
        for name in ("num_ref", "num_cur", "cat_ref", "cat_cur"):
            for column in arrays[name]:
                np.sort(column)

    return run, lambda _: {}


def modelpilot_here(meta, arrays, source: str):
    sys.path.insert(0, source)
    from modelpilot.analysis import assess_drift, drift_from_samples

    settings = meta["settings"]
    common = {"min_samples": settings["min_samples"], "bands": tuple(settings["bands"])}

    def run():
        drifts = {}
        for i, name in enumerate(meta["numerical"]):
            drifts[name] = drift_from_samples(arrays["num_ref"][i], arrays["num_cur"][i], kind="numerical", **common)
        for i, name in enumerate(meta["categorical"]):
            drifts[name] = drift_from_samples(arrays["cat_ref"][i], arrays["cat_cur"][i], kind="categorical", **common)
        return assess_drift(
            drifts,
            alpha=settings["alpha"],
            correction=settings["correction"],
            effect_size=settings["effect_size"],
            effect_threshold=settings["effect_threshold"],
        )

    return run, lambda verdicts: {"drifted": {name: bool(v.drifted) for name, v in verdicts.items()}}


def main(argv: list[str]) -> int:
    data, repeats, warmup, out = Path(argv[0]), int(argv[1]), int(argv[2]), Path(argv[3])
    source = argv[4] if len(argv) > 4 else None
    meta, arrays = load(data)
    results = {"versions": {p: metadata.version(p) for p in ("evidently", "alibi-detect", "numpy", "scipy", "pandas")}}
    contenders = {}
    for name, setup in (
        ("evidently", evidently_report),
        ("alibi", alibi_detectors),
        ("floor_peer_numpy", floor),
        *([("modelpilot_peer_numpy", lambda m, a: modelpilot_here(m, a, source))] if source else []),
    ):
        try:
            contenders[name] = setup(meta, arrays)
        except Exception as err:  # one peer failing must not hide the others
            results[name] = {"error": f"{type(err).__name__}: {err}"}
    # In rounds, each contender once per round, so a change in the machine's load hits all alike.
    runs = {name: [] for name in contenders}
    last = {}
    for round_ in range(warmup + repeats):
        for name, (run, _) in list(contenders.items()):
            try:
                began = time.perf_counter()
                last[name] = run()
                if round_ >= warmup:
                    runs[name].append(time.perf_counter() - began)
            except Exception as err:
                results[name] = {"error": f"{type(err).__name__}: {err}"}
                del contenders[name]
    for name, (_, read) in contenders.items():
        results[name] = {"runs": runs[name], **read(last[name])}
    out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
