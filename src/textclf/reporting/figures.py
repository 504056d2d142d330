"""Figures logged with every run: learning curves and the confusion matrix."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are only written to files
import matplotlib.pyplot as plt
import numpy as np


def curves(history: list[dict[str, float]], best_epoch: int) -> plt.Figure:
    """Loss and accuracy per epoch, train vs val, with the restored (best) epoch marked."""
    epochs = np.arange(1, len(history) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=False):
        for split, style in (("train", "o-"), ("val", "s-")):
            ax.plot(epochs, [row[f"{split}_{metric}"] for row in history], style, label=split)
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
        ax.set(xlabel="epoch", ylabel=metric, title=metric, xticks=epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def confusion_figure(matrix: list[list[int]], label_names: list[str], title: str) -> plt.Figure:
    """Counts in each cell; colour is the row-normalised rate (recall per true label)."""
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size), constrained_layout=True)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(label_names))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(label_names, rotation=90 if len(label_names) > 6 else 0)
    ax.set_yticklabels(label_names)
    if len(label_names) <= 20:  # numbers stay readable up to about 20 classes
        for (i, j), n in np.ndenumerate(counts):
            ax.text(
                j,
                i,
                str(n),
                ha="center",
                va="center",
                color="white" if rates[i, j] > 0.5 else "black",
            )
    fig.colorbar(image, ax=ax, label="fraction of true label")
    return fig
