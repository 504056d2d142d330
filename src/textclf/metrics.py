"""Classification metrics of an evaluation: accuracy, F1 and the confusion matrix."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def f1(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> float:
    """Binary F1 of class 1 for two classes (the usual "positive" class), macro F1 otherwise."""
    if num_labels == 2:
        return float(f1_score(labels, predictions, average="binary", pos_label=1, zero_division=0))
    return float(f1_score(labels, predictions, average="macro", labels=range(num_labels), zero_division=0))


def confusion(labels: np.ndarray, predictions: np.ndarray, label_names: tuple[str, ...]) -> dict:
    """Rows are true labels, columns predictions; JSON-ready."""
    matrix = confusion_matrix(labels, predictions, labels=range(len(label_names)))
    return {"labels": list(label_names), "matrix": matrix.tolist(),
            "rows": "true label", "columns": "predicted label"}
