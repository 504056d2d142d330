"""From a data source to validated, labeled train/val/test splits with a fingerprint.

Split semantics (data.split):
- provided: keep the source's test split; carve a stratified validation set from train; then keep a
  stratified `train_fraction` of the remaining training rows.
- pool (the course notebooks): pool train and test rows, keep a stratified `train_fraction`, then split
  that subset stratified into train/val/test (default 80/10/10).
Splits depend only on the data config and data.seed, never on model or training settings, and for one
seed a smaller train_fraction gives a subset of a larger one.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from textclf.assets import resolve
from textclf.config import Config, DataConfig
from textclf.errors import InputError, raise_if
from textclf.sources import Source, read_source

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame  # columns: text (str), label (int in 0..K-1)
    val: pd.DataFrame
    test: pd.DataFrame
    label_names: tuple[str, ...]
    fingerprint: str  # hash of the rows of each split and the label map
    uri: str  # where the rows came from

    def frames(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "val": self.val, "test": self.test}


def load_source(cfg: Config) -> Source:
    resolved = resolve(cfg.data.name, "data")
    if isinstance(resolved, str):
        raise InputError([f"{cfg.where('data.name')}: data.name: {resolved}"])
    return read_source(resolved)


def load_splits(cfg: Config) -> Splits:
    """Read, validate and split; raises InputError listing every problem with file and row."""
    source = load_source(cfg)
    used = [cfg.data.train_split] + ([cfg.data.test_split] if _wants_test(cfg, source) else [])
    frames, names = label_frames(source, used, cfg)
    train, val, test = split_rows(frames, cfg.data)
    raise_if([f"{cfg.where('data.train_fraction')}: data: the {name} split is empty after splitting "
              f"{sum(len(f) for f in frames.values())} rows; raise data.train_fraction or the split sizes"
              for name, part in zip(SPLITS, (train, val, test)) if len(part) == 0])
    return Splits(train, val, test, names, fingerprint((train, val, test), names), source.uri)


def _wants_test(cfg: Config, source: Source) -> bool:
    present = cfg.data.test_split in source.splits
    if cfg.data.split == "provided" and not present:
        raise InputError([f"{cfg.where('data.test_split')}: data.test_split: no split {cfg.data.test_split!r} "
                          f"in {source.uri} (splits: {', '.join(source.splits)}); name one, or set "
                          f"data.split=pool to carve the test set from the pooled rows"])
    return present


def label_frames(source: Source, used: list[str], cfg: Config) -> tuple[dict[str, pd.DataFrame], tuple]:
    """Check columns, text and labels of the used splits; map labels to 0..K-1 with their names."""
    d = cfg.data
    problems = []
    for split in used:
        if split not in source.splits:
            problems.append(f"{cfg.where('data.train_split')}: data.train_split: no split {split!r} in "
                            f"{source.uri} (splits: {', '.join(source.splits)})")
            continue
        if source.splits[split].empty:
            problems.append(f"{source.files[split]}: has no rows; the {split} split is empty")
            continue
        columns = list(source.splits[split].columns)
        problems += [f"{source.files[split]}: column {c!r} not found (columns: {', '.join(map(str, columns))}); "
                     f"set data.{key}" for c, key in ((d.text_column, "text_column"),
                                                      (d.label_column, "label_column")) if c not in columns]
    raise_if(problems)
    raw = {s: source.splits[s] for s in used}
    names = d.label_names or source.label_names.get(d.label_column) or _names_from_values(raw, d.label_column)
    if len(names) < 2:
        raise InputError([f"{source.files[used[0]]}: column {d.label_column!r} has {len(names)} distinct "
                          f"label(s); a classifier needs at least 2"])
    frames = {}
    for split, frame in raw.items():
        text, labels = frame[d.text_column], frame[d.label_column]
        codes = _codes(labels, names)
        bad_text = ~text.map(lambda t: isinstance(t, str) and t.strip() != "").to_numpy()
        problems += _rows(source, split, bad_text, "text is empty, whitespace or not a string",
                          "remove or fill these rows")
        problems += _rows(source, split, labels.isna().to_numpy(), "label is missing",
                          "remove these rows or label them")
        problems += _rows(source, split, (codes < 0) & labels.notna().to_numpy(),
                          f"label is outside the label map ({_describe(names)})",
                          "fix the rows or set data.label_names")
        frames[split] = pd.DataFrame({"text": text.to_numpy(), "label": codes})
    raise_if(problems)
    return frames, tuple(names)


def _names_from_values(frames: dict[str, pd.DataFrame], column: str) -> tuple[str, ...]:
    values = pd.concat([f[column] for f in frames.values()]).dropna().unique()
    if all(isinstance(v, str) for v in values):
        return tuple(sorted(values))
    numbers = sorted({int(v) for v in values if _integral(v)})
    return tuple(str(v) for v in numbers)


def _integral(v) -> bool:
    return isinstance(v, int | np.integer) or (isinstance(v, float | np.floating) and float(v).is_integer())


def _codes(labels: pd.Series, names: tuple[str, ...]) -> np.ndarray:
    """Label codes 0..K-1; -1 where the label is not in the map. Integer labels index `names`
    unless the names are the integers themselves (labels read from values)."""
    lookup = {n: i for i, n in enumerate(names)}
    as_index = not all(n.lstrip("-").isdigit() for n in names)

    def code(v) -> int:
        if isinstance(v, str):
            return lookup.get(v, -1)
        if not _integral(v):
            return -1
        return int(v) if as_index and 0 <= int(v) < len(names) else lookup.get(str(int(v)), -1)

    return np.fromiter((code(v) for v in labels), dtype=np.int64, count=len(labels))


def _describe(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(names)} labels: {shown}"


def _rows(source: Source, split: str, bad: np.ndarray, what: str, fix: str) -> list[str]:
    rows = np.flatnonzero(bad)
    if len(rows) == 0:
        return []
    more = f" ({len(rows)} rows in all, first shown)" if len(rows) > 1 else ""
    return [f"{source.where(split, int(rows[0]))}: {what}{more}; {fix}"]


def split_rows(frames: dict[str, pd.DataFrame], d: DataConfig) -> tuple[pd.DataFrame, ...]:
    train_rows = frames[d.train_split]
    if d.split == "pool":
        pool = pd.concat(list(frames.values()), ignore_index=True)
        subset = _take(pool, round(d.train_fraction * len(pool)), d.seed)[0]
        val, rest = _take(subset, _count(d.val_size, len(subset)), d.seed)
        test, train = _take(rest, _count(d.pool_test_size(), len(subset)), d.seed)
        return train, val, test
    val, rest = _take(train_rows, _count(d.val_size, len(train_rows)), d.seed)
    train = _take(rest, round(d.train_fraction * len(rest)), d.seed)[0]
    test = frames[d.test_split]
    if d.test_size is not None:
        test = _take(test, _count(d.test_size, len(test)), d.seed)[0]
    return train, val, test


def _count(size: float, n: int) -> int:
    """A split size is a fraction of n (< 1) or a row count (>= 1)."""
    return int(size) if size >= 1 else round(size * n)


def _take(frame: pd.DataFrame, count: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified (taken, rest) with `count` rows taken. Each class is shuffled once with `seed` and its
    first k rows are taken, so a smaller count takes a subset of a larger one."""
    labels = frame.label.to_numpy()
    target = min(count, len(frame))
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * target / max(len(frame), 1)
    quota = np.floor(share).astype(int)
    # largest remainders get the leftover rows, so the total is exact
    quota[np.argsort(-(share - quota), kind="stable")[: target - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    taken = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, quota)]
    mask = np.zeros(len(frame), dtype=bool)
    mask[np.concatenate(taken) if taken else []] = True
    return frame[mask].reset_index(drop=True), frame[~mask].reset_index(drop=True)


def fingerprint(parts: tuple[pd.DataFrame, ...], names: tuple[str, ...]) -> str:
    """sha256 over the label map and, per split, the sorted hashes of (text, label) rows."""
    digest = hashlib.sha256(json.dumps(list(names)).encode())
    for name, part in zip(SPLITS, parts):
        rows = sorted(hashlib.sha1(f"{t}\x1f{y}".encode()).digest() for t, y in zip(part.text, part.label))
        digest.update(name.encode() + len(rows).to_bytes(8, "little") + b"".join(rows))
    return digest.hexdigest()[:16]
