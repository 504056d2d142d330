"""Labeled text from where users keep it, as one DataFrame per split (a Source).

A table file (one split: parquet, Arrow, CSV, TSV, JSON Lines, JSON, .gz of the text ones; files.py) or a
directory of `<split>.<ext>` files; a `datasets` save_to_disk directory or a hub name (hf.py); the original
aclImdb layout; TREC `.label` files; DataFrames or Datasets in memory (the Python API).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from textclf.assets import Resolved
from textclf.errors import InputError

TREC_SPLITS = {"train_5500": "train", "TREC_10": "test"}  # original file names -> split names


@dataclass
class Source:
    uri: str  # where the data came from (logged with the MLflow dataset input)
    splits: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # split -> file or directory, for messages
    locators: dict[str, Callable[[int], str]] = field(default_factory=dict)  # split -> row i -> "line 7"
    label_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # label column -> names

    def where(self, split: str, i: int) -> str:
        return f"{self.files[split]}: {self.locators[split](i)}"

    def add(self, split: str, frame: pd.DataFrame, file: str, locate: Callable[[int], str]) -> None:
        self.splits[split], self.files[split], self.locators[split] = frame, file, locate


def read_source(resolved: Resolved) -> Source:
    from textclf.data import files, hf

    if resolved.kind == "hub":
        return hf.read_hub(resolved.location)
    path = Path(resolved.location)
    source = Source(uri=resolved.uri)
    if path.is_file():  # one file holds all the rows: it is the train split
        if path.suffix == ".label":
            files.read_trec(path, "train", source)
        else:
            files.read_table(path, "train", source)
    elif hf.is_saved_dataset(path):
        return hf.read_saved(path, resolved.uri)
    elif any(path.glob("*/*/*.txt")):
        files.read_aclimdb(path, source)
    elif list(path.glob("*.label")):
        for file in sorted(path.glob("*.label")):
            files.read_trec(file, TREC_SPLITS.get(file.stem, file.stem), source)
    else:
        tables = sorted(p for p in path.iterdir() if p.is_file() and files.table_ext(p))
        if not tables:
            raise InputError([f"{path}: no {', '.join(files.TABLE_EXTS)} files, datasets save_to_disk directory, "
                              f"aclImdb layout or TREC .label files found"])
        for file in tables:
            files.read_table(file, files.split_name(file), source)
    return source


def from_frames(frames: dict[str, object], uri: str = "in-memory DataFrames") -> Source:
    """Splits handed over in memory (the Python API): pandas DataFrames or datasets.Datasets."""
    from textclf.data import hf

    source = Source(uri=uri)
    for split, data in frames.items():
        if hf.is_dataset(data):
            hf.add_dataset(source, split, data, f"the {split} Dataset")
        else:
            source.add(split, hf.as_frame(data).reset_index(drop=True), f"the {split} DataFrame",
                       lambda i: f"row {i + 1}")
    return source
