"""Classification metrics of an evaluation (F1, the confusion matrix), and which way is better for
each final metric."""

from __future__ import annotations

import numpy as np

from textclf.stats.intervals import f1_scores

# final metric -> the per-epoch key whose value at the epoch train.monitor has selected so far (the
# weights that would be kept) is the metric's value if training stopped now: what a pruner is told
# each epoch, and what summary.selected_values stores at the end (docs/methodology.md)
RUNNING = {
    "best_val_accuracy": "val_accuracy",
    "best_val_loss": "val_loss",
    "train_val_loss_ratio": "train_val_loss_ratio",
}


# metrics where less is better though their names do not end in loss or _s (sizes, costs, counts of
# trouble)
SMALLER_IS_BETTER = (
    "peak_gpu_mem_mb",
    "trainable_params",
    "total_params",
    "trainable_fraction",
    "model_artifact_mb",
    "padding_fraction",
    "tracking_failed_sends",
    "epochs_run",
    "stopped_early",
)
# healthy near 1 / no better end: the user says which way
NO_DIRECTION = ("train_val_loss_ratio", "best_epoch")


def default_direction(metric: str) -> str | None:
    """The direction a bare objective name gets; None where no direction is natural."""
    if metric in NO_DIRECTION:
        return None
    if metric.endswith("_per_s"):  # a rate (samples, tokens per second): more is better
        return "maximize"
    return (
        "minimize" if metric.endswith(("loss", "_s")) or metric in SMALLER_IS_BETTER else "maximize"
    )


def f1(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> float:
    """Binary F1 of class 1 for two classes (the usual "positive" class); otherwise macro F1 over
    the classes present in the truth or the predictions. A class absent from both has no F1:
    counting it as 0 would cap a perfect classifier on TREC fine's test set (42 of 50 classes) at
    0.84. A class never predicted and never true in a binary set scores 0 (sklearn's
    zero_division=0; tests check every case against sklearn). The one formula, shared with the
    bootstrap that gives its interval (stats/intervals.py f1_scores)."""
    labels, predictions = (
        np.asarray(labels, dtype=np.int64),
        np.asarray(predictions, dtype=np.int64),
    )
    return float(f1_scores(labels, predictions, num_labels)[0])


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, size: int) -> np.ndarray:
    """Counts of (true, predicted) pairs, size x size. numpy, not sklearn: the training path then
    needs no scipy, which keeps the GPU benchmark's carried wheelhouse under its size limit
    (bench/device)."""
    pairs = np.asarray(labels, dtype=np.int64) * size + np.asarray(predictions, dtype=np.int64)
    return np.bincount(pairs, minlength=size * size).reshape(size, size)


def confusion(labels: np.ndarray, predictions: np.ndarray, label_names: tuple[str, ...]) -> dict:
    """Rows are true labels, columns predictions; JSON-ready."""
    matrix = confusion_matrix(labels, predictions, len(label_names))
    return {
        "labels": list(label_names),
        "matrix": matrix.tolist(),
        "rows": "true label",
        "columns": "predicted label",
    }
