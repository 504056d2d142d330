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
    predictions[:3] = 45  # class 0 predicted as a class absent from the truth: both count, with F1 0
    expected = (0 + 0 + 41 * 1.0) / 43
    assert metrics.f1(labels, predictions, 50) == pytest.approx(expected)


def test_perfect_predictions_score_one():
    for labels, k in ((np.array([0, 1, 1, 0]), 2), (np.array([0, 2, 1, 2]), 3)):
        assert metrics.f1(labels, labels.copy(), k) == 1.0
