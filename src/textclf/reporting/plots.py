"""The report's plots, each drawn only when the runs vary what it is about (else a one-line reason).

Every function returns (figure or None, message); the figures are matplotlib's (Agg), and the
caller saves them as PNG.
"""

from __future__ import annotations

import math
from typing import cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

HEATMAP_KEYS = ("data.max_length", "train.learning_rate")


def heatmap_cells(runs: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean, count) of `metric` per max length x learning rate, one rule for every cell: the
    finished runs the study itself ran (seed repeats belong to the seed-noise section; counting them
    would make a repeated cell an average of seeds and its neighbours single runs)."""
    done = runs[runs["status"] == "FINISHED"]
    if "textclf.repeat_of" in done:
        done = done[done["textclf.repeat_of"].isna()]
    grid = done.pivot_table(
        index=HEATMAP_KEYS[0], columns=HEATMAP_KEYS[1], values=metric, aggfunc=["mean", "count"]
    )
    return cast(pd.DataFrame, grid["mean"]), cast(pd.DataFrame, grid["count"])


def heatmap_length_lr(runs: pd.DataFrame, metric: str):
    """Validation accuracy over max length x learning rate (the first notebook's question)."""
    if not all(k in runs and runs[k].nunique() > 1 for k in HEATMAP_KEYS):
        return None, "skipped max-length x learning-rate heatmap: the runs do not vary both"
    grid, counts = heatmap_cells(runs, metric)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * grid.shape[1], 1.2 + 0.8 * grid.shape[0]))
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [f"{v:.0e}" for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(int(v)) for v in grid.index])
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if not math.isnan(value):
            n = int(counts.to_numpy()[i, j])
            ax.text(
                j,
                i,
                f"{value:.3f}" + (f"\n(mean of {n})" if n > 1 else ""),
                ha="center",
                va="center",
                color="white",
            )
    ax.set(
        xlabel="learning rate",
        ylabel="max length",
        title=f"{metric} by max length and learning rate (trials, repeats left out)",
    )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig, "max-length x learning-rate heatmap"


def data_scaling(
    runs: pd.DataFrame, metric: str, fits: list, groups: pd.Series, varied: tuple[str, ...] = ()
):
    """`metric` and training time against training-set size, one curve per comparable set (each
    comparability group and combination of the other varied keys: scaling.comparable_sets), with
    its fitted power law where it has one."""
    from textclf.reporting import scaling

    if "data.train_rows" not in runs or runs["data.train_rows"].nunique() < 2:
        return None, "skipped data-scaling plot: the runs do not vary the training-set size"
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    fitted = {fit.label: fit for fit in fits}
    sizes = runs["data.train_rows"].dropna().to_numpy(float)
    sets = scaling.comparable_sets(runs, metric, list(varied), groups)
    palette = plt.get_cmap("tab10")
    for k, (label, frame) in enumerate(sets):
        color = palette(k % palette.N)
        means = frame.groupby("data.train_rows")[[metric, "train_time_s"]].mean()
        left.plot(frame["data.train_rows"], frame[metric], "o", color=color, alpha=0.5)
        left.plot(means.index, means[metric], "-", color=color, label=label)
        right.plot(means.index, means["train_time_s"], "o-", color=color, label=label)
        if label in fitted:
            _draw_fit(left, fitted[label], sizes, color)
    left.set(xscale="log", xlabel="training rows", ylabel=metric)
    left.set_title(f"{metric} vs training-set size")
    # minor labels collide on a log axis
    left.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left.set_xticks(np.unique(sizes), [f"{v:,.0f}" for v in np.unique(sizes)])
    left.legend(fontsize=7)
    right.set(xlabel="training rows", ylabel="train time (s)")
    right.set_title("training time vs training-set size")
    fig.tight_layout()
    drawn = " with power-law fits" if fits else " (no power-law fit: see the report)"
    return fig, "data-scaling plot" + drawn


def _draw_fit(ax, fit, sizes: np.ndarray, color) -> None:
    """A fitted power law, dashed, from the smallest size to twice the largest."""
    from textclf.reporting import scaling

    xs = np.linspace(sizes.min(), sizes.max() * 2, 100)
    a, b, c = (fit.params[k][0] for k in "abc")
    curve = scaling.power_law(xs, a, b, c)
    ax.plot(
        xs,
        1 - curve if fit.rate else curve,
        "--",
        color=color,
        label=f"{fit.label} fit: b = {b:.3g}",
    )


def pareto(runs: pd.DataFrame, metric: str, cost: str, direction: str = "maximize"):
    """`metric` against `cost` (train time or trainable params) with the Pareto front marked (in the
    objective's direction: a loss is better lower)."""
    if cost not in runs or runs[cost].nunique() < 2:
        return None, f"skipped {metric} vs {cost}: it does not vary"
    sign = 1 if direction == "maximize" else -1
    done = runs[runs["status"] == "FINISHED"].dropna(subset=[metric, cost])
    done = done.assign(_score=sign * done[metric]).sort_values(
        [cost, "_score"], ascending=[True, False]
    )
    front, best = [], -math.inf
    # cheapest (then best) first: on the front if it beats all cheaper
    for index, row in done.iterrows():
        if row["_score"] > best:
            front.append(index)
            best = row["_score"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter(done[cost], done[metric], color="tab:gray", label="runs")
    ax.plot(
        done.loc[front, cost], done.loc[front, metric], "o-", color="tab:red", label="Pareto front"
    )
    label = (
        "model.freeze"
        if "model.freeze" in done and done["model.freeze"].nunique() > 1
        else "trial.number"
    )
    for _, row in done.iterrows():
        if label in row:
            ax.annotate(
                str(row[label]),
                (row[cost], row[metric]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set(xlabel=cost, ylabel=metric, title=f"{metric} vs {cost}")
    if cost == "trainable_params":
        ax.set_xscale("log")
    ax.legend()
    fig.tight_layout()
    return fig, f"{metric} vs {cost} with Pareto front"


def loss_curves(histories: dict[str, pd.DataFrame]):
    """Per-epoch train (dashed) and validation (solid) loss of every run, overlaid."""
    if not histories:
        return None, "skipped loss curves: no per-epoch metrics"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    palette = plt.get_cmap("tab20")
    for k, (name, history) in enumerate(histories.items()):
        color = palette(k % palette.N)
        ax.plot(history.index, history["val_loss"], "o-", color=color, label=name)
        ax.plot(history.index, history["train_loss"], "x--", color=color)
    ax.set(xlabel="epoch", ylabel="loss", title="val (solid) and train (dashed) loss per run")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig, "per-epoch loss curves"
