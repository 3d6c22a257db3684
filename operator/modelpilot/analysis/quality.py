"""Classification quality (accuracy, precision, recall, F1) from a confusion matrix of counts,
such as Prometheus returns for late-arriving ground truth."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ClassQuality", "Quality", "confusion_from_counts", "quality_from_confusion"]


class ClassQuality(NamedTuple):
    """One class's scores; ``support`` is how many predictions had it as the actual class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Quality:
    """Quality over ``n`` labelled predictions.

    A class never predicted has precision 0, a class with no support recall 0, and F1 is 0 when
    both are (scikit-learn's ``zero_division=0``). Labels with neither support nor predictions
    did not occur and are left out of ``per_class`` and of the macro averages. Weighted
    averages weight each class by its support.
    """

    n: int
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    per_class: Mapping[str, ClassQuality]


def quality_from_confusion(matrix: ArrayLike, labels: Sequence[str], *, min_samples: int = 1) -> Quality | None:
    """Quality from ``matrix[i][j]``, the count of actual ``labels[i]`` predicted as ``labels[j]``.

    Returns None when fewer than ``min_samples`` predictions carry a label (an empty matrix
    included): the caller reports that as insufficient data. Counts are rounded to whole
    numbers, as Prometheus ``increase()`` extrapolates them.
    """
    k = len(labels)
    counts = np.rint(np.asarray(matrix, dtype=np.float64))
    if counts.size != k * k:
        raise ValueError(f"a confusion matrix over {k} labels needs {k}x{k} counts, got shape {counts.shape}")
    counts = counts.reshape(k, k)
    if len(set(labels)) != k:
        raise ValueError("labels must be distinct")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("the confusion matrix must hold non-negative finite counts")
    n = int(counts.sum())
    if n < max(min_samples, 1):
        return None

    hits = np.diag(counts)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    # 2TP / (2TP + FP + FN), the harmonic mean of precision and recall, and 0 when TP is.
    f1 = np.divide(2 * hits, predicted + support, out=np.zeros_like(hits), where=hits > 0)
    occurred = (support + predicted) > 0
    return Quality(
        n=n,
        accuracy=float(hits.sum() / n),
        precision_macro=float(precision[occurred].mean()),
        recall_macro=float(recall[occurred].mean()),
        f1_macro=float(f1[occurred].mean()),
        precision_weighted=float(precision @ support / n),
        recall_weighted=float(recall @ support / n),
        f1_weighted=float(f1 @ support / n),
        per_class={
            label: ClassQuality(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, label in enumerate(labels)
            if occurred[i]
        },
    )


def confusion_from_counts(rows: Iterable[tuple[str, str, float]]) -> tuple[np.ndarray, list[str]]:
    """Confusion matrix and its sorted labels from ``(predicted, actual, count)`` triples.

    Rows are actual classes and columns predicted ones; repeated pairs add up.
    """
    triples = list(rows)
    labels = sorted({label for predicted, actual, _ in triples for label in (predicted, actual)})
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)))
    for predicted, actual, count in triples:
        matrix[index[actual], index[predicted]] += count
    return matrix, labels
