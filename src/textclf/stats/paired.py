"""Is B better than A on the same rows? Paired tests: exact McNemar for accuracy (only the rows
where the two disagree carry information), a sign-flip permutation test for F1 and per-row loss, and
a paired percentile bootstrap interval for every difference. The difference is always B - A."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from textclf.stats.intervals import (
    LEVEL,
    RESAMPLES,
    draws_in_blocks,
    f1_scores,
    resample_rows,
)


@dataclass(frozen=True)
class Comparison:
    metric: str  # accuracy, f1 or loss (mean per-row cross-entropy: lower is better)
    a: float
    b: float
    difference: float  # b - a
    low: float  # the difference's interval
    high: float
    p_value: float  # two-sided, H0: A and B score the same on rows like these
    test: str
    n: int
    a_only: int = 0  # rows A classified right and B wrong (accuracy)
    b_only: int = 0

    def better(self, alpha: float) -> str:
        """ "b", "a" or "" (no difference at level alpha) in the metric's own direction."""
        return better_side(self.metric, self.difference, self.p_value, alpha)

    def as_dict(self) -> dict:
        return asdict(self)


def better_side(metric: str, difference: float, p_value: float, alpha: float) -> str:
    """ "b" or "a" when p < alpha, by the sign of B - A in the metric's direction (loss: lower)."""
    if p_value >= alpha or difference == 0:
        return ""
    up = difference > 0
    return ("b" if up else "a") if metric != "loss" else ("a" if up else "b")


def accuracy(
    labels: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Comparison:
    from scipy.stats import binomtest

    right_a, right_b = pred_a == labels, pred_b == labels
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    p = binomtest(b_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    diff = right_b.astype(float) - right_a
    low, high = _interval(
        np.concatenate([diff[idx].mean(1) for idx in resample_rows(len(labels), resamples, seed)]),
        level,
    )
    a, b = float(right_a.mean()), float(right_b.mean())
    return Comparison(
        "accuracy", a, b, b - a, low, high, float(p), "exact McNemar", len(labels), a_only, b_only
    )


def f1(
    labels: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    num_labels: int,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Comparison:
    boot = np.concatenate(
        [
            f1_scores(labels[idx], pred_b[idx], num_labels)
            - f1_scores(labels[idx], pred_a[idx], num_labels)
            for idx in resample_rows(len(labels), resamples, seed)
        ]
    )
    flips: list[np.ndarray] = []
    # H0: A's and B's predictions exchangeable
    for swap in _coin_flips(len(labels), resamples, seed + 1):
        tiled = np.broadcast_to(labels, swap.shape)
        flips.append(
            f1_scores(tiled, np.where(swap, pred_a, pred_b), num_labels)
            - f1_scores(tiled, np.where(swap, pred_b, pred_a), num_labels)
        )
    null = np.concatenate(flips)
    a, b = (float(f1_scores(labels, p, num_labels)[0]) for p in (pred_a, pred_b))
    return Comparison(
        "f1",
        a,
        b,
        b - a,
        *_interval(boot, level),
        _p(null, b - a),
        "paired permutation",
        len(labels),
    )


def loss(
    losses_a: np.ndarray,
    losses_b: np.ndarray,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Mean per-row cross-entropy; the permutation flips the sign of each row's difference."""
    diff = losses_b - losses_a
    boot = np.concatenate([diff[idx].mean(1) for idx in resample_rows(len(diff), resamples, seed)])
    null = np.concatenate(
        [
            np.where(flip, -diff, diff).mean(1)
            for flip in _coin_flips(len(diff), resamples, seed + 1)
        ]
    )
    a, b = float(losses_a.mean()), float(losses_b.mean())
    return Comparison(
        "loss",
        a,
        b,
        b - a,
        *_interval(boot, level),
        _p(null, b - a),
        "paired sign-flip permutation",
        len(diff),
    )


def _coin_flips(n: int, draws: int, seed: int):
    """draws x n fair coin flips, in blocks (intervals.draws_in_blocks)."""
    return draws_in_blocks(n, draws, seed, lambda rng, shape: rng.random(shape) < 0.5)


def _interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    return float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


def _p(null: np.ndarray, observed: float) -> float:
    """Two-sided Monte Carlo p-value, (1 + as extreme) / (1 + draws): never 0."""
    return float((1 + (np.abs(null) >= abs(observed) - 1e-12).sum()) / (1 + len(null)))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error at most alpha over the family): the i-th
    smallest p-value times (m - i + 1), made non-decreasing in that order, capped at 1; in the
    input's order. scipy has no Holm (its false_discovery_control is Benjamini-Hochberg, which
    bounds another error rate)."""
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def challenger_wins(
    metric: str,
    labels: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    alpha: float,
    candidates: int = 1,
    seed: int = 0,
) -> tuple[bool, str]:
    """Should the challenger replace the champion? One-sided (the question is "is it better?") at
    alpha / candidates, where `candidates` is how many models the challenger was chosen among on
    these same rows (a sweep's complete trials): whichever one was selected, the chance that an
    equal one passes is at most alpha (union bound). accuracy: `champion`/`challenger` are
    predictions, exact McNemar; loss: per-row losses, a sign-flip permutation of their
    differences. Returns (wins, the test in words)."""
    from scipy.stats import binomtest

    level = alpha / max(1, candidates)
    if metric == "accuracy":
        right_a, right_b = champion == labels, challenger == labels
        a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
        p = binomtest(b_only, a_only + b_only, 0.5, "greater").pvalue if a_only + b_only else 1.0
        test, gain = "one-sided exact McNemar", float(right_b.mean() - right_a.mean())
    else:
        diff = challenger - champion  # lower is better
        draws = max(RESAMPLES, int(np.ceil(20 / level)))  # a p-value fine enough for the level
        below = sum(
            int((np.where(flip, -diff, diff).mean(1) <= diff.mean() + 1e-12).sum())
            for flip in _coin_flips(len(diff), draws, seed + 1)
        )
        p = (1 + below) / (1 + draws)
        test, gain = "one-sided sign-flip permutation", float(diff.mean())
    corrected = f" ({alpha:g} / {candidates} candidates)" if candidates > 1 else ""
    wins = bool(p < level) and (gain > 0 if metric == "accuracy" else gain < 0)
    return wins, (
        f"{metric} {gain:+.4f}, p = {float(p):.3g} ({test}): "
        f"{'better' if wins else 'not better'} at {level:.2g}{corrected}"
    )
