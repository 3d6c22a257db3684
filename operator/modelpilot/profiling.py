"""Building a reference profile from training data (`modelpilot profile`)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.analysis import bucket_counts
from modelpilot.api.profile import CategoricalProfile, NumericalProfile, ReferenceProfile
from modelpilot.instrument import buckets_from_sample

__all__ = ["UnreadableTable", "build_profile", "read_table"]


class UnreadableTable(Exception):
    """Training data that cannot be read as given; the message says what to do."""


def read_table(path: Path) -> dict[str, list[Any]]:
    """Columns of a CSV (header row) or Parquet file; Parquet needs pyarrow installed."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise UnreadableTable(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        table = parquet.read_table(path)
        return {name: column.to_pylist() for name, column in zip(table.column_names, table.columns)}
    try:
        handle = path.open(newline="")
    except OSError as err:
        raise UnreadableTable(f"{path}: {err.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns: dict[str, list[Any]] = {name: [] for name in reader.fieldnames or []}
        for row in reader:
            for name in columns:
                columns[name].append(row.get(name))
    return columns


def _numbers(values: Sequence[Any]) -> np.ndarray | None:
    """The column as floats (empty cells NaN), or None when it holds anything else."""
    out = np.empty(len(values), dtype=float)
    for i, value in enumerate(values):
        if value is None or value == "":
            out[i] = math.nan
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            return None
    return out


def build_profile(
    columns: Mapping[str, Sequence[Any]],
    *,
    bounds: Mapping[str, Sequence[float]] | None = None,
    buckets: int = 10,
    prediction_column: str | None = None,
    exclude: Sequence[str] = (),
) -> ReferenceProfile:
    """Counts of every column: numerical ones in ``bounds`` (or quantile buckets of the data),
    the others by category; the prediction column's classes as the label baseline."""
    bounds = dict(bounds or {})
    features: dict[str, NumericalProfile | CategoricalProfile] = {}
    rows = max((len(v) for v in columns.values()), default=0)
    for name, values in columns.items():
        if name in exclude or name == prediction_column:
            continue
        numbers = _numbers(values)
        if numbers is not None and np.isfinite(numbers).any():
            edges = list(bounds.get(name) or buckets_from_sample(numbers[np.isfinite(numbers)], buckets))
            features[name] = NumericalProfile(
                upper_bounds=edges,
                counts=bucket_counts(numbers, np.array(edges)).tolist(),
                missing=int(np.isnan(numbers).sum()),
            )
        else:
            present = [str(v) for v in values if v not in (None, "")]
            categories, counts = np.unique(np.array(present, dtype=object), return_counts=True)
            features[name] = CategoricalProfile(
                counts={str(c): float(n) for c, n in zip(categories, counts)}, missing=len(values) - len(present)
            )
    predictions: dict[str, float] = {}
    if prediction_column is not None:
        if prediction_column not in columns:
            raise ValueError(f"no column {prediction_column!r}; columns are {sorted(columns)}")
        classes, counts = np.unique(np.array([str(v) for v in columns[prediction_column]], dtype=object), return_counts=True)
        predictions = {str(c): float(n) for c, n in zip(classes, counts)}
    return ReferenceProfile(rows=rows, features=features, predictions=predictions)
