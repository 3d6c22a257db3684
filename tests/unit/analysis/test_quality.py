"""Quality from a confusion matrix against a plain loop over raw (actual, predicted) labels."""

import numpy as np
import pytest

from modelpilot.analysis import ClassQuality, confusion_from_counts, quality_from_confusion


def loop_quality(actual, predicted, classes):
    """Per-class precision, recall, F1 and support, and the averages, from raw label pairs."""
    per_class = {}
    for label in classes:
        tp = sum(a == label and p == label for a, p in zip(actual, predicted))
        fp = sum(a != label and p == label for a, p in zip(actual, predicted))
        fn = sum(a == label and p != label for a, p in zip(actual, predicted))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = (precision, recall, f1, tp + fn)
    n = len(actual)
    averages = {}
    for position, name in enumerate(("precision", "recall", "f1")):
        values = [scores[position] for scores in per_class.values()]
        supports = [scores[3] for scores in per_class.values()]
        averages[f"{name}_macro"] = sum(values) / len(values)
        averages[f"{name}_weighted"] = sum(v * s for v, s in zip(values, supports)) / n
    accuracy = sum(a == p for a, p in zip(actual, predicted)) / n
    return per_class, averages, accuracy


def matrix_of(actual, predicted, labels):
    matrix = np.zeros((len(labels), len(labels)))
    for a, p in zip(actual, predicted):
        matrix[labels.index(a), labels.index(p)] += 1
    return matrix


def test_matches_a_loop_over_raw_labels():
    rng = np.random.default_rng(1)
    labels = ["bird", "cat", "dog", "fish"]
    actual = list(rng.choice(labels, p=[0.1, 0.4, 0.3, 0.2], size=500))
    predicted = [a if rng.random() < 0.7 else rng.choice(labels) for a in actual]
    quality = quality_from_confusion(matrix_of(actual, predicted, labels), labels)
    per_class, averages, accuracy = loop_quality(actual, predicted, labels)
    assert quality.n == 500
    assert quality.accuracy == pytest.approx(accuracy)
    for name, value in averages.items():
        assert getattr(quality, name) == pytest.approx(value), name
    for label in labels:
        assert quality.per_class[label] == pytest.approx(per_class[label])
        assert isinstance(quality.per_class[label], ClassQuality)


def test_classes_never_predicted_or_never_seen_score_zero():
    actual = ["a", "a", "b", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "d", "a"]
    labels = ["a", "b", "c", "d"]
    quality = quality_from_confusion(matrix_of(actual, predicted, labels), labels)
    per_class, averages, _ = loop_quality(actual, predicted, labels)
    assert quality.per_class["c"] == (0.0, 0.0, 0.0, 1)  # never predicted
    assert quality.per_class["d"] == (0.0, 0.0, 0.0, 0)  # predicted but never the truth
    assert quality.f1_macro == pytest.approx(averages["f1_macro"])
    assert quality.precision_weighted == pytest.approx(averages["precision_weighted"])


def test_labels_that_never_occur_are_left_out_of_the_averages():
    actual, predicted = ["a", "a", "b"], ["a", "b", "b"]
    with_ghost = quality_from_confusion(matrix_of(actual, predicted, ["a", "b", "ghost"]), ["a", "b", "ghost"])
    without = quality_from_confusion(matrix_of(actual, predicted, ["a", "b"]), ["a", "b"])
    assert with_ghost == without
    assert "ghost" not in with_ghost.per_class


def test_no_feedback_gives_none():
    assert quality_from_confusion(np.zeros((2, 2)), ["a", "b"]) is None
    assert quality_from_confusion([], []) is None
    assert quality_from_confusion([[3, 1], [0, 4]], ["a", "b"], min_samples=10) is None
    assert quality_from_confusion([[3, 1], [0, 4]], ["a", "b"], min_samples=8).n == 8


def test_extrapolated_counts_are_rounded():
    exact = quality_from_confusion([[40, 10], [5, 45]], ["a", "b"])
    assert quality_from_confusion([[40.3, 9.6], [5.2, 44.9]], ["a", "b"]) == exact


@pytest.mark.parametrize(
    ("matrix", "labels"),
    [([[1, 2], [3, 4]], ["a"]), ([[1, 2], [3, 4]], ["a", "a"]), ([[1, -2], [3, 4]], ["a", "b"])],
)
def test_malformed_matrices_are_rejected(matrix, labels):
    with pytest.raises(ValueError):
        quality_from_confusion(matrix, labels)


def test_confusion_from_prometheus_triples():
    rows = [("cat", "cat", 40.0), ("dog", "cat", 10.0), ("cat", "dog", 5.0), ("dog", "dog", 45.0), ("cat", "cat", 2.0)]
    matrix, labels = confusion_from_counts(rows)
    assert labels == ["cat", "dog"]
    # Rows are actual, columns predicted: ("dog", "cat") is a cat predicted as a dog.
    assert matrix.tolist() == [[42.0, 10.0], [5.0, 45.0]]
    assert quality_from_confusion(matrix, labels).per_class["cat"].recall == pytest.approx(42 / 52)


def test_confusion_from_no_rows_is_empty():
    matrix, labels = confusion_from_counts([])
    assert labels == [] and matrix.shape == (0, 0)
