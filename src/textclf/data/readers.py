"""Labeled text from where users keep it, as one DataFrame per split (a Source).

A table file (one split: parquet, Arrow, CSV, TSV, JSON Lines, JSON, .gz of the text ones; files.py)
or a directory of `<split>.<ext>` files; a `datasets` save_to_disk directory or a hub name (hf.py);
the original aclImdb layout; TREC `.label` files; DataFrames or Datasets in memory (the Python API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textclf.assets import Resolved
from textclf.data.files import (
    TABLE_EXTS,
    read_aclimdb,
    read_table,
    read_trec,
    split_name,
    table_ext,
)
from textclf.data.hf import (
    add_dataset,
    as_frame,
    is_dataset,
    is_saved_dataset,
    read_hub,
    read_saved,
)
from textclf.data.source import Source
from textclf.errors import InputError

TREC_SPLITS = {"train_5500": "train", "TREC_10": "test"}  # original file names -> split names


@dataclass(frozen=True)
class Layout:
    """A directory layout: its name (as the README lists it), how to recognise it and read it."""

    name: str
    matches: Callable[[Path], bool]
    read: Callable[[Path, Source], Source]


def read_source(resolved: Resolved) -> Source:
    if resolved.kind == "hub":
        return read_hub(resolved.location)
    path = Path(resolved.location)
    source = Source(uri=resolved.uri)
    if path.is_file():  # one file holds all the rows: it is the train split
        (read_trec if path.suffix == ".label" else read_table)(path, "train", source)
        return source
    layout = next(layout for layout in LAYOUTS if layout.matches(path))
    return layout.read(path, source)


def _read_trec_files(path: Path, source: Source) -> Source:
    for file in sorted(path.glob("*.label")):
        if not file.is_file():
            raise InputError([f"{file}: a directory where a TREC label file belongs; remove it"])
        read_trec(file, TREC_SPLITS.get(file.stem, file.stem), source)
    return source


def _read_table_files(path: Path, source: Source) -> Source:
    odd = sorted(p.name for p in path.iterdir() if not p.is_file() and table_ext(p))
    if odd:
        raise InputError(
            [
                f"{path / odd[0]}: a directory where a data file belongs; remove it or "
                "put the split's file there"
            ]
        )
    tables = sorted(p for p in path.iterdir() if p.is_file() and table_ext(p))
    if not tables:
        kinds = ", ".join([*TABLE_EXTS, *(layout.name for layout in LAYOUTS[:-1])])
        raise InputError([f"{path}: none of these found: {kinds}"])
    for file in tables:
        read_table(file, split_name(file), source)
    return source


def _read_acl(path: Path, source: Source) -> Source:
    read_aclimdb(path, source)
    return source


# every directory layout, one entry each, tried in order (the last takes any directory); the
# README's Sources list names each (tests/data/test_formats.py checks it)
LAYOUTS = (
    Layout(
        "datasets save_to_disk directory",
        is_saved_dataset,
        lambda path, source: read_saved(path, source.uri),
    ),
    Layout("aclImdb layout", lambda path: any(path.glob("*/*/*.txt")), _read_acl),
    Layout("TREC .label files", lambda path: any(path.glob("*.label")), _read_trec_files),
    Layout("directory of <split>.<ext> files", lambda path: True, _read_table_files),
)


def from_frames(frames: dict[str, object], uri: str = "in-memory DataFrames") -> Source:
    """Splits handed over in memory (the Python API): pandas DataFrames or datasets.Datasets."""
    source = Source(uri=uri)
    for split, data in frames.items():
        if is_dataset(data):
            add_dataset(source, split, data, f"the {split} Dataset")
        else:
            source.add(
                split,
                as_frame(data).reset_index(drop=True),
                f"the {split} DataFrame",
                lambda i: f"row {i + 1}",
            )
    return source
