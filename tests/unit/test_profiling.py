import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from modelpilot.api.profile import ReferenceProfile
from modelpilot.profiling import build_profile, read_table


def test_profile_counts_every_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    amount = rng.normal(0, 1, 1000)
    rows = ["amount,merchant,predicted"] + [
        f"{'' if i % 100 == 0 else a},{'grocery' if a < 0 else 'travel'},{'fraud' if a > 2 else 'legit'}"
        for i, a in enumerate(amount)
    ]
    path = tmp_path / "train.csv"
    path.write_text("\n".join(rows) + "\n")
    profile = build_profile(read_table(path), buckets=5, prediction_column="predicted")
    numeric = profile.features["amount"]
    present = np.array([a for i, a in enumerate(amount) if i % 100 != 0])
    assert numeric.missing == 10
    assert sum(numeric.counts) == len(present)
    edges = [-math.inf, *numeric.upper_bounds, math.inf]
    expected = [int(((present > lo) & (present <= hi)).sum()) for lo, hi in zip(edges, edges[1:])]
    assert numeric.counts == expected
    assert profile.features["merchant"].counts == {"grocery": float((amount < 0).sum()), "travel": float((amount >= 0).sum())}
    assert profile.predictions == {"fraud": float((amount > 2).sum()), "legit": float((amount <= 2).sum())}


def test_given_bounds_are_used_and_the_cli_writes_both_files(tmp_path: Path) -> None:
    data = tmp_path / "t.csv"
    data.write_text("x,y\n0.5,a\n1.5,b\n2.5,a\n")
    bounds = tmp_path / "bounds.json"
    bounds.write_text(json.dumps({"x": [1.0, 2.0]}))
    out, bounds_out = tmp_path / "profile.json", tmp_path / "server-bounds.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "modelpilot.cli",
            "profile",
            "--data",
            str(data),
            "--bounds",
            str(bounds),
            "-o",
            str(out),
            "--bounds-output",
            str(bounds_out),
        ],
        check=True,
        capture_output=True,
    )
    profile = ReferenceProfile.model_validate_json(out.read_text())
    assert profile.features["x"].upper_bounds == [1.0, 2.0]
    assert profile.features["x"].counts == [1.0, 1.0, 1.0]
    assert json.loads(bounds_out.read_text()) == {"x": [1.0, 2.0]}
