"""Metric definitions (docs/methodology.md): F1 over the classes that occur."""

import numpy as np
import pytest

from textclf.training import metrics


def test_binary_f1_is_the_f1_of_class_one():
    labels, predictions = np.array([1, 1, 1, 0, 0, 0]), np.array([1, 1, 0, 1, 0, 0])
    assert metrics.f1(labels, predictions, 2) == pytest.approx(2 / 3)  # precision 2/3, recall 2/3


def test_macro_f1_ignores_classes_absent_from_truth_and_prediction():
    """TREC fine's test set has 42 of 50 classes: a perfect classifier must score 1.0, not 42/50."""
    labels = np.repeat(np.arange(42), 3)
    assert metrics.f1(labels, labels.copy(), 50) == 1.0
    predictions = labels.copy()
    predictions[:3] = (
        45  # class 0 predicted as a class absent from the truth: both count, with F1 0
    )
    expected = (0 + 0 + 41 * 1.0) / 43
    assert metrics.f1(labels, predictions, 50) == pytest.approx(expected)


def test_perfect_predictions_score_one():
    for labels, k in ((np.array([0, 1, 1, 0]), 2), (np.array([0, 2, 1, 2]), 3)):
        assert metrics.f1(labels, labels.copy(), k) == 1.0


@pytest.mark.parametrize("num_labels", [2, 3, 6, 50])
def test_f1_and_confusion_agree_with_sklearn(num_labels):
    """textclf computes them in numpy (no scipy on the training path, bench/device); sklearn's
    definitions are the reference: binary F1 of class 1, macro F1 over the classes present,
    zero_division=0."""
    from sklearn.metrics import confusion_matrix, f1_score

    rng = np.random.default_rng(num_labels)
    for size in (1, 2, 5, 40, 300):
        for skew in (
            0.0,
            0.9,
        ):  # skewed predictions leave classes never predicted, or only predicted
            labels = rng.integers(0, num_labels, size)
            predictions = np.where(rng.random(size) < skew, 0, rng.integers(0, num_labels, size))
            if num_labels == 2:
                expected = f1_score(
                    labels, predictions, average="binary", pos_label=1, zero_division=0
                )
            else:
                expected = f1_score(
                    labels,
                    predictions,
                    average="macro",
                    labels=np.union1d(labels, predictions),
                    zero_division=0,
                )
            assert metrics.f1(labels, predictions, num_labels) == pytest.approx(expected, abs=1e-12)
            names = tuple(str(i) for i in range(num_labels))
            assert (
                metrics.confusion(labels, predictions, names)["matrix"]
                == confusion_matrix(labels, predictions, labels=range(num_labels)).tolist()
            )
