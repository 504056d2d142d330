"""Data scaling done per comparable set of runs: error = a·n^-b + c fitted to (training rows, error)
within each comparability group and each combination of the other varied keys (a model swap is its
own curve), only with at least 4 distinct sizes (3 parameters), with 95% bootstrap intervals for
a, b, c and for the reading "+1 point needs N more rows". The bootstrap resamples seeds within each
size (where a size has several runs) and the validation rows of each run (an accuracy over `rows`
rows resampled is Binomial(rows, p) / rows). A loss objective is fitted as it is (its floor c is a
loss), never read as 1 - loss."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from textclf.stats import rows as row_tables
from textclf.stats.intervals import resample_rows

MIN_SIZES = 4  # a 3-parameter curve through 3 points fits anything
RESAMPLES = 300
SIZE_KEYS = ("data.train_fraction", "data.train_rows", "train.seed")  # what varies along one curve


RowsOf = Callable[[str], "pd.DataFrame | None"]  # a run id -> its validation predictions


@dataclass(frozen=True)
class Fit:
    label: str  # which runs: the group and the other varied keys
    sizes: int  # distinct training-set sizes
    points: int  # runs
    params: dict[str, tuple[float, float, float]]  # a, b, c: (value, low, high)
    reading: str  # "+1 point ... needs about N [low, high] more training rows beyond M"
    at_asymptote: float  # share of resamples whose curve never gains the point
    # an accuracy-like score, fitted as its error 1 - score (else the metric as it is, a loss)
    rate: bool
    resampled: str = ""  # what the bootstrap resampled, in words


def power_law(n, a, b, c):
    return a * np.power(n, -b) + c


def fit_curve(n: np.ndarray, error: np.ndarray) -> tuple[float, float, float] | None:
    """(a, b, c) of error = a n^-b + c (scipy curve_fit, b in [0, 3], c >= 0); None unconverged."""
    from scipy.optimize import curve_fit

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (a, b, c), _ = curve_fit(
                power_law,
                n,
                error,
                p0=(1.0, 0.5, max(error.min() * 0.5, 1e-3)),
                bounds=([0, 0, 0], [np.inf, 3, np.inf]),
                maxfev=20000,
            )
    except (RuntimeError, ValueError):
        return None
    return float(a), float(b), float(c)


def rows_for(step: float, a: float, b: float, c: float, largest: float) -> float:
    """More training rows beyond `largest` for the error to drop by `step`; inf at the asymptote."""
    target = power_law(largest, a, b, c) - step
    return ((target - c) / a) ** (-1 / b) - largest if target > c and a > 0 and b > 0 else math.inf


def comparable_sets(runs: pd.DataFrame, metric: str, varied: list[str], groups: pd.Series):
    """(label, finished runs) for each comparability group and combination of the other varied keys:
    the runs one curve may join."""
    done = runs[(runs["status"] == "FINISHED") & runs[metric].notna()].assign(_group=groups)
    if "data.train_rows" not in done or done["data.train_rows"].nunique() < 2:
        return
    others = [k for k in varied if k not in SIZE_KEYS and k in done]
    for key, frame in done.groupby(["_group", *others], dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        group = key[0]  # None or NaN for runs in no group
        missing = group is None or (isinstance(group, float) and math.isnan(group))
        label = ", ".join(
            ["no group" if missing else f"group {group}"]
            + [f"{k}={v}" for k, v in zip(others, key[1:], strict=False)]
        )
        yield label, frame


def fit_all(
    runs: pd.DataFrame,
    metric: str,
    direction: str,
    varied: list[str],
    groups: pd.Series,
    seed: int = 0,
    rows_of: RowsOf | None = None,
) -> tuple[list[Fit], list[str]]:
    """One Fit per comparable set of finished runs that varies the training-set size; a line per
    set skipped. `rows_of` gives a run's per-row validation predictions, so every metric's rows
    are resampled (without them an accuracy's rows are drawn as Binomial(rows, p), and a loss's
    are not resampled)."""
    fits: list[Fit] = []
    skipped: list[str] = []
    for label, frame in comparable_sets(runs, metric, varied, groups):
        out = fit_one(frame, metric, direction, label, np.random.default_rng(seed), rows_of)
        if isinstance(out, Fit):
            fits.append(out)
        else:
            skipped.append(out)
    return fits, skipped


def fit_one(
    frame: pd.DataFrame, metric: str, direction: str, label: str, rng, rows_of: RowsOf | None = None
) -> Fit | str:
    n, value = frame["data.train_rows"].to_numpy(float), frame[metric].to_numpy(float)
    if len(np.unique(n)) < MIN_SIZES:
        return (
            f"{label}: no fit: {len(np.unique(n))} training-set sizes, and the power law has 3 "
            f"parameters (needs >= {MIN_SIZES} sizes)"
        )
    # an accuracy-like score: its error is 1 - score; a loss is fitted as it is
    rate = direction == "maximize"
    if rate and not ((value >= 0) & (value <= 1)).all():
        return f"{label}: no fit: {metric} is maximised but not a rate in [0, 1]"
    error = 1 - value if rate else value
    best = fit_curve(n, error)
    if best is None:
        return f"{label}: no fit: the power law did not converge"
    rows, said = row_draws(frame, metric, rate, rows_of, rng)
    draws = np.array(
        [d for d in (_refit(n, error, rows, b, rng) for b in range(RESAMPLES)) if d is not None]
    )
    step, largest = 0.01, float(n.max())
    gains = np.array([rows_for(step, d[0], d[1], d[2], largest) for d in draws])
    low, high = (np.quantile(gains, q, method="inverted_cdf") for q in (0.025, 0.975))
    what = "+1 point of " + metric if rate else f"-{step:g} of {metric}"
    more = rows_for(step, best[0], best[1], best[2], largest)
    reading = (
        f"{what} needs about "
        + (f"{more:,.0f}" if math.isfinite(more) else "more than the fit allows")
        + f" [{_rows(low)}, {_rows(high)}] more training rows beyond {largest:,.0f}"
    )
    params = {
        name: (
            float(best[i]),
            float(np.quantile(draws[:, i], 0.025)),
            float(np.quantile(draws[:, i], 0.975)),
        )
        for i, name in enumerate("abc")
    }
    return Fit(
        label,
        len(np.unique(n)),
        len(n),
        params,
        reading,
        float(np.isinf(gains).mean()),
        rate,
        _resampled(int(pd.Series(n).value_counts().max()), said),
    )


def _resampled(per_size: int, rows: str) -> str:
    """What the bootstrap resampled, in words: seeds where a size has several runs, and rows."""
    seeds = f"seeds ({per_size} runs per size)"
    if per_size > 1:
        return f"{seeds} and {rows}" if rows else f"{seeds} only (no per-row predictions)"
    if rows:
        return f"{rows[:-1]}; one run per size: seeds not resampled)"
    return "nothing: one run per size and no per-row predictions (zero-width intervals)"


def row_draws(
    frame: pd.DataFrame, metric: str, rate: bool, rows_of: RowsOf | None, rng
) -> tuple[np.ndarray | None, str]:
    """(runs x RESAMPLES error values with each run's validation rows resampled, what was
    resampled in words). From the per-row predictions where every run has them: correctness for
    an accuracy, each row's cross-entropy for a loss; else for an accuracy Binomial(rows, p) /
    rows; else none."""
    got = [rows_of(r) for r in frame["run_id"]] if rows_of and "run_id" in frame else [None]
    frames = [f for f in got if f is not None]
    if len(frames) == len(got) and ("accuracy" in metric or "loss" in metric):
        kind = "predictions" if "accuracy" in metric else "losses"
        per_row = [
            (f.prediction.to_numpy() == f.label.to_numpy()).astype(float)
            if kind == "predictions"
            else row_tables.row_losses(f)
            for f in frames
        ]
        means = np.stack([_resampled_means(v, rng) for v in per_row])
        return (1 - means if rate else means), f"validation rows (per-row {kind})"
    if rate and "data.val_rows" in frame:
        rows = frame["data.val_rows"].to_numpy(float).astype(int)
        error = 1 - frame[metric].to_numpy(float)
        drawn = rng.binomial(rows[:, None], np.clip(error, 0, 1)[:, None], (len(rows), RESAMPLES))
        return drawn / rows[:, None], "validation rows (binomial, from the row count)"
    return None, ""


def _resampled_means(values: np.ndarray, rng) -> np.ndarray:
    """RESAMPLES means of `values`, each over the rows drawn with replacement."""
    draws = resample_rows(len(values), RESAMPLES, int(rng.integers(2**31)))
    return np.concatenate([values[idx].mean(1) for idx in draws])


def _refit(n, error, rows, b: int, rng):
    """One bootstrap refit: seeds resampled within each size, each run's validation rows resampled
    (draw b of row_draws)."""
    picks = np.concatenate(
        [rng.choice(np.flatnonzero(n == size), size=(n == size).sum()) for size in np.unique(n)]
    )
    drawn = error[picks] if rows is None else rows[picks, b]
    return fit_curve(n[picks], drawn)


def _rows(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "asymptote"


def as_markdown(fits: list[Fit], skipped: list[str]) -> list[str]:
    """The report's data-scaling section."""
    lines = []
    for fit in fits:
        (a, al, ah), (b, bl, bh), (c, cl, ch) = (fit.params[k] for k in "abc")
        lines += [
            f"- **{fit.label}** ({fit.points} runs, {fit.sizes} sizes): error = a·n^-b + c "
            f"with a = {a:.3g} [{al:.3g}, {ah:.3g}], b = {b:.3g} [{bl:.3g}, {bh:.3g}], c = "
            f"{c:.3g} [{cl:.3g}, {ch:.3g}]; {fit.reading}; {fit.at_asymptote:.0%} of "
            f"resamples at the asymptote (95% bootstrap intervals over {fit.resampled})"
        ]
    return lines + [f"- {line}" for line in skipped]
