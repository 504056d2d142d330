"""Labels of a data source: columns checked, text and labels validated row by row, labels mapped to
0..K-1 with their names. Every problem names its file and row (InputError)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from textclf.config import DataConfig
from textclf.data.source import Source
from textclf.errors import InputError, raise_if

log = logging.getLogger(__name__)


def label_frames(
    source: Source, used: list[str], data: DataConfig
) -> tuple[dict[str, pd.DataFrame], tuple]:
    """Check columns, text and labels of the used splits; map labels to 0..K-1 with their names."""
    raise_if(_missing(source, used, data))
    raw = {s: source.splits[s] for s in used}
    check_given_names(data, source)
    names = (
        data.label_names
        or source.label_names.get(data.label_column)
        or _names_from_values(raw, data.label_column)
    )
    if len(names) < 2:
        raise InputError(
            [
                f"{source.files[used[0]]}: column {data.label_column!r} has {len(names)} "
                "distinct label(s); a classifier needs at least 2"
            ]
        )
    frames, problems = {}, []
    for split, frame in raw.items():
        text, labels = frame[data.text_column], frame[data.label_column]
        codes = _codes(labels, names)
        bad_text = ~text.map(lambda t: isinstance(t, str) and t.strip() != "").to_numpy()
        for bad, what, fix in (
            (bad_text, "text is empty, whitespace or not a string", "remove or fill these rows"),
            (labels.isna().to_numpy(), "label is missing", "remove these rows or label them"),
            (
                (codes < 0) & labels.notna().to_numpy(),
                f"label is outside the label map ({_describe(names)})",
                "fix the rows or set data.label_names",
            ),
        ):
            problems += _rows(source, split, bad, what, fix)
        frames[split] = pd.DataFrame({"text": text.to_numpy(), "label": codes})
    raise_if(problems)
    return frames, tuple(names)


def _missing(source: Source, used: list[str], data: DataConfig) -> list[str]:
    """The used splits that are absent or empty, and the text and label columns they lack."""
    problems = []
    for split in used:
        if split not in source.splits:
            problems.append(
                f"{data.where('data.train_split')}: data.train_split: no split "
                f"{split!r} in {source.uri} (splits: {', '.join(source.splits)})"
            )
            continue
        if source.splits[split].empty:
            problems.append(f"{source.files[split]}: has no rows; the {split} split is empty")
            continue
        columns = list(source.splits[split].columns)
        problems += [
            f"{source.files[split]}: column {c!r} not found (columns: "
            f"{', '.join(map(str, columns))}); set data.{key}"
            for c, key in ((data.text_column, "text_column"), (data.label_column, "label_column"))
            if c not in columns
        ]
    return problems


def check_given_names(data: DataConfig, source: Source) -> None:
    """data.label_names name the label codes 0..K-1 in order: where the source names its classes too
    (a datasets ClassLabel, parquet `<column>_names` metadata), they must agree, or `[pos, neg]`
    silently renames every negative review positive. Without names in the source the order cannot be
    checked: said once in the log."""
    given, own = data.label_names, source.label_names.get(data.label_column)
    if not given:
        return
    if own and tuple(given) != tuple(own):
        fix = "give them in that order" if sorted(given) == sorted(own) else "drop data.label_names"
        raise InputError(
            [
                f"{data.where('data.label_names')}: data.label_names: "
                f"[{', '.join(given)}] disagrees with the classes {source.uri} names for "
                f"column {data.label_column!r} ([{', '.join(own)}], code 0 first); "
                f"{fix}"
            ]
        )
    if not own:
        log.info(
            "data.label_names: %s name the label codes %s in that order (the source names "
            "none to check against)",
            list(given),
            list(range(len(given))),
        )


def _names_from_values(frames: dict[str, pd.DataFrame], column: str) -> tuple[str, ...]:
    values = pd.concat([f[column] for f in frames.values()]).dropna().unique()
    if all(isinstance(v, str) for v in values):
        return tuple(sorted(values))
    numbers = sorted({int(v) for v in values if _integral(v)})
    return tuple(str(v) for v in numbers)


def _integral(v) -> bool:
    return isinstance(v, int | np.integer) or (
        isinstance(v, float | np.floating) and float(v).is_integer()
    )


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
