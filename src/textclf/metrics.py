"""Classification metrics of an evaluation: accuracy, F1 and the confusion matrix."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def f1(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> float:
    """Binary F1 of class 1 for two classes (the usual "positive" class); otherwise macro F1 over the classes
    present in the truth or the predictions. A class absent from both has no F1: counting it as 0 would cap a
    perfect classifier on TREC fine's test set (42 of 50 classes) at 0.84."""
    if num_labels == 2:
        return float(f1_score(labels, predictions, average="binary", pos_label=1, zero_division=0))
    present = np.union1d(labels, predictions)
    return float(f1_score(labels, predictions, average="macro", labels=present, zero_division=0))


def confusion(labels: np.ndarray, predictions: np.ndarray, label_names: tuple[str, ...]) -> dict:
    """Rows are true labels, columns predictions; JSON-ready."""
    matrix = confusion_matrix(labels, predictions, labels=range(len(label_names)))
    return {"labels": list(label_names), "matrix": matrix.tolist(),
            "rows": "true label", "columns": "predicted label"}
