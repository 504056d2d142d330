"""Stratified draws: the rows each split gets (data.split's modes), every draw a prefix of one
seeded order, so smaller fractions nest in larger ones, class by class (the definitions:
docs/methodology.md, "Splits")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from textclf.config import DataConfig

SPLITS = ("train", "val", "test")


def split_rows(frames: dict[str, pd.DataFrame], d: DataConfig) -> tuple[pd.DataFrame, ...]:
    """(train, val, test) from the deduplicated frames (a single "pool" frame unless split is
    provided). Each stage draws with its own seed, derived from data.seed."""
    # evaluation rows first, from the whole pool: the same for every train_fraction
    if d.split == "pool":
        pool = frames["pool"]
        val, rest = take(pool, _count(d.val_size, len(pool)), _stage_seed(d.seed, "val"))
        test, rest = take(rest, _count(d.pool_test_size(), len(pool)), _stage_seed(d.seed, "test"))
        train = take(rest, round(d.train_fraction * len(rest)), _stage_seed(d.seed, "train"))[0]
        return train, val, test
    if d.split == "subset":  # the notebooks: subset, then test, then val of what is left
        subset = take(
            frames["pool"],
            round(d.train_fraction * len(frames["pool"])),
            _stage_seed(d.seed, "train"),
        )[0]
        test, rest = take(
            subset, _count(d.pool_test_size(), len(subset)), _stage_seed(d.seed, "test")
        )
        val, train = take(rest, _count(d.val_size, len(subset)), _stage_seed(d.seed, "val"))
        return train, val, test
    if d.split == "given":  # the source's own train/val/test; train_fraction still subsamples train
        train = take(
            frames[d.train_split],
            round(d.train_fraction * len(frames[d.train_split])),
            _stage_seed(d.seed, "train"),
        )[0]
        return train, frames[d.val_split], _subsample_test(frames[d.test_split], d)
    train_rows = frames[d.train_split]
    val, rest = take(train_rows, _count(d.val_size, len(train_rows)), _stage_seed(d.seed, "val"))
    train = take(rest, round(d.train_fraction * len(rest)), _stage_seed(d.seed, "train"))[0]
    return train, val, _subsample_test(frames[d.test_split], d)


def _subsample_test(test: pd.DataFrame, d: DataConfig) -> pd.DataFrame:
    if d.test_size is None:
        return test
    return take(test, _count(d.test_size, len(test)), _stage_seed(d.seed, "test"))[0]


def _stage_seed(seed: int, stage: str) -> int:
    return int(np.random.SeedSequence([seed, SPLITS.index(stage)]).generate_state(1)[0])


def _count(size: float, n: int) -> int:
    """A split size is a fraction of n (< 1) or a row count (>= 1)."""
    return int(size) if size >= 1 else round(size * n)


def take(frame: pd.DataFrame, count: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified (taken, rest) with `count` rows taken: the first `count` rows of
    `stratified_order`. Because it is a prefix of one fixed order, a smaller count takes a subset of
    a larger one, per class."""
    order = stratified_order(frame.label.to_numpy(), seed)
    mask = np.zeros(len(frame), dtype=bool)
    mask[order[: min(count, len(frame))]] = True
    return frame[mask].reset_index(drop=True), frame[~mask].reset_index(drop=True)


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of the rows whose every prefix is a stratified sample. Each class is shuffled;
    its j-th row (of n_c) gets the priority (j + 0.5) / n_c, and rows are taken in priority order,
    ties in random order. A prefix of k rows then gives class c round(p * n_c) rows for the p
    reached: Webster's (Sainte-Lague) divisor method, which never gives a class fewer rows when k
    grows (largest remainders can)."""
    rng = np.random.default_rng(seed)
    priority = np.empty(len(labels))
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        priority[rows] = (np.arange(len(rows)) + 0.5) / len(rows)
    return np.lexsort((rng.random(len(labels)), priority))
