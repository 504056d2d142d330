"""Intervals for a classifier's score on a fixed set of rows: Wilson for accuracy (a binomial
proportion), a percentile bootstrap over rows for F1, which is not a proportion."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000


def wilson(correct: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of correct / n. Written out (tests check it equals scipy's
    binomtest proportion_ci(method="wilson")): every run computes it, and the GPU machine's training
    path has no scipy."""
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p, z2 = correct / n, z * z / n
    centre, half = (p + z2 / 2) / (1 + z2), z * np.sqrt(p * (1 - p) / n + z2 / (4 * n)) / (1 + z2)
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def f1_scores(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    """training/metrics.py's F1 (binary: class 1; else macro over the classes present in the
    truth or the predictions) for each row of 2-D `labels` / `predictions` (one resample per
    row), vectorized."""
    labels, predictions = np.atleast_2d(labels), np.atleast_2d(predictions)
    draws, k = labels.shape[0], num_labels
    codes = (np.arange(draws)[:, None] * k * k + labels * k + predictions).ravel()
    matrix = np.bincount(codes, minlength=draws * k * k).reshape(draws, k, k)
    true_pos, predicted, actual = (
        np.diagonal(matrix, axis1=1, axis2=2),
        matrix.sum(1),
        matrix.sum(2),
    )
    denominator = predicted + actual
    scores = np.divide(
        2 * true_pos, denominator, out=np.zeros(denominator.shape), where=denominator > 0
    )
    if k == 2:
        return scores[:, 1]
    present = denominator > 0
    return np.where(present.any(1), (scores * present).sum(1) / np.maximum(present.sum(1), 1), 0.0)


def draws_in_blocks(n: int, draws: int, seed: int, draw, budget: int = 2_000_000):
    """`draws` x n random values from draw(rng, shape), yielded in blocks of at most `budget` values
    (25,000 test rows x 2,000 resamples at once would be 400 MB); seeded: the same result every time
    it is asked."""
    rng = np.random.default_rng(seed)
    step = max(1, budget // max(n, 1))
    for start in range(0, draws, step):
        yield draw(rng, (min(step, draws - start), n))


def resample_rows(n: int, resamples: int = RESAMPLES, seed: int = 0, budget: int = 2_000_000):
    """Row indices drawn with replacement, `resamples` x n in all, in blocks (draws_in_blocks)."""
    return draws_in_blocks(
        n, resamples, seed, lambda rng, shape: rng.integers(0, n, size=shape), budget
    )


def bootstrap_f1(
    labels: np.ndarray,
    predictions: np.ndarray,
    num_labels: int,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of F1 over the rows."""
    if len(labels) == 0:
        return (0.0, 1.0)
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    scores = np.concatenate(
        [
            f1_scores(labels[idx], predictions[idx], num_labels)
            for idx in resample_rows(len(labels), resamples, seed)
        ]
    )
    return _percentiles(scores, level)


def bootstrap_mean(
    values: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean over rows (a loss: each row's cross-entropy)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    means = np.concatenate(
        [values[idx].mean(1) for idx in resample_rows(len(values), resamples, seed)]
    )
    return _percentiles(means, level)


def bootstrap_ratio(
    numerator: np.ndarray,
    denominator: np.ndarray,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(numerator) / mean(denominator), two independent sets
    of rows each resampled on its own (the train/val loss ratio: the training probe's rows over
    the validation rows)."""
    top = np.concatenate(
        [
            np.asarray(numerator, dtype=float)[idx].mean(1)
            for idx in resample_rows(len(numerator), resamples, seed)
        ]
    )
    bottom = np.concatenate(
        [
            np.asarray(denominator, dtype=float)[idx].mean(1)
            for idx in resample_rows(len(denominator), resamples, seed + 1)
        ]
    )
    return _percentiles(top / np.maximum(bottom, 1e-12), level)


def _percentiles(draws: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    return (float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail)))


def bounds(metric: str) -> tuple[str, str]:
    """The names a metric's interval is logged under: (<metric>_ci_low, <metric>_ci_high)."""
    return f"{metric}_ci_low", f"{metric}_ci_high"


def with_interval(metrics: dict, metric: str, digits: int = 4, fixed: bool = False) -> str:
    """`0.8412 [0.81, 0.8702]`: the value and, where logged, its interval (`digits` significant, or
    decimals with `fixed`)."""
    low, high = bounds(metric)
    form = f".{digits}{'f' if fixed else 'g'}"
    text = f"{metrics[metric]:{form}}"
    if low in metrics and high in metrics:
        text += f" [{metrics[low]:{form}}, {metrics[high]:{form}}]"
    return text


def score_intervals(
    labels: np.ndarray, predictions: np.ndarray, num_labels: int, level: float = LEVEL
) -> dict[str, tuple[float, float]]:
    """{"accuracy": (low, high), "f1": (low, high)} for one classifier on one set of rows."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return {
        "accuracy": wilson(int((labels == predictions).sum()), len(labels), level),
        "f1": bootstrap_f1(labels, predictions, num_labels, level),
    }
