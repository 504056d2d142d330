"""Per-row predictions: what a run saves for its validation and test rows, so that any two runs
scored on the same rows compare row by row (paired) and a user can read the errors."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pandas as pd

COLUMNS = ("row", "key", "label", "prediction", "confidence", "probabilities")


def row_keys(texts, labels) -> list[str]:
    """A key per row from its text and label (the hash data/splits.py fingerprints), stable across
    runs and row orders; the n-th repeat of a row gets `#n`."""
    seen: Counter[str] = Counter()
    keys = []
    for text, label in zip(texts, labels, strict=False):
        key = hashlib.sha1(f"{text}\x1f{int(label)}".encode()).hexdigest()[:16]
        keys.append(key if not seen[key] else f"{key}#{seen[key]}")
        seen[key] += 1
    return keys


def predictions_frame(texts, labels: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """One row per evaluated row, in the split's order: its key, label, prediction, the predicted
    class's probability and every class's probability (float32)."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    predicted = probabilities.argmax(-1)
    return pd.DataFrame(
        {
            "row": np.arange(len(labels)),
            "key": row_keys(texts, labels),
            "label": np.asarray(labels, dtype=np.int64),
            "prediction": predicted,
            "confidence": probabilities[np.arange(len(predicted)), predicted],
            "probabilities": list(probabilities),
        }
    )


def misclassified(
    frame: pd.DataFrame, texts, label_names: tuple[str, ...], top: int = 50, chars: int = 500
) -> pd.DataFrame:
    """The `top` most confident errors: text (cut at `chars`), label, prediction, confidence."""
    wrong = (
        frame[frame.label != frame.prediction].sort_values("confidence", ascending=False).head(top)
    )
    texts = pd.Series(list(texts))
    return pd.DataFrame(
        {
            "row": wrong.row.to_numpy(),
            "text": [str(texts[r])[:chars] for r in wrong.row],
            "label": [label_names[i] for i in wrong.label],
            "prediction": [label_names[i] for i in wrong.prediction],
            "confidence": wrong.confidence.astype(float).round(4).to_numpy(),
        }
    )


def row_losses(frame: pd.DataFrame) -> np.ndarray:
    """Each row's cross-entropy, -log p(label), from the saved probabilities."""
    probabilities = np.stack(list(frame.probabilities))
    return -np.log(
        np.clip(probabilities[np.arange(len(frame)), frame.label.to_numpy()], 1e-12, None)
    )


def paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`a` and `b` in one row order (by key); ValueError when they do not hold the same rows."""
    if len(a) != len(b) or set(a.key) != set(b.key):
        raise ValueError(
            f"the two runs were scored on different rows ({len(a)} and {len(b)} rows, "
            f"{len(set(a.key) & set(b.key))} in common)"
        )
    order = a.key.to_numpy()
    return a.set_index("key").loc[order].reset_index(), b.set_index("key").loc[order].reset_index()
