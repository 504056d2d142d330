"""Read labeled text from its source format into one DataFrame per split.

Formats: a parquet/CSV/JSONL file (one split) or a directory of `<split>.<ext>` files; the original aclImdb
layout (`<split>/<label>/*.txt`); TREC `.label` files; a Hugging Face dataset (hub or cache).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from textclf.assets import Resolved
from textclf.errors import InputError, first_line

TABLE_EXTS = (".parquet", ".csv", ".jsonl")
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
    if resolved.kind == "hub":
        return _read_hub(resolved.location)
    path = Path(resolved.location)
    source = Source(uri=resolved.uri)
    if path.is_file():  # one file holds all the rows: it is the train split
        _read_file(path, "train", source)
    elif any(path.glob("*/*/*.txt")):
        _read_aclimdb(path, source)
    elif list(path.glob("*.label")):
        for file in sorted(path.glob("*.label")):
            _read_trec(file, TREC_SPLITS.get(file.stem, file.stem), source)
    else:
        files = sorted(p for p in path.iterdir() if p.suffix in TABLE_EXTS)
        if not files:
            raise InputError([f"{path}: no {', '.join(TABLE_EXTS)}, aclImdb or TREC .label files found"])
        for file in files:
            _read_file(file, file.stem, source)
    return source


def _read_file(path: Path, split: str, source: Source) -> None:
    if path.suffix == ".label":
        return _read_trec(path, split, source)
    if path.stat().st_size == 0:
        raise InputError([f"{path}: the file is empty; it needs a text column and a label column"])
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow's errors share no useful base class
            raise InputError([f"{path}: not a readable parquet file ({first_line(e)}); "
                              f"rewrite it with pandas.DataFrame.to_parquet"]) from None
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
        for key, value in meta.items():  # coarse_names names the classes of coarse_label (or coarse)
            if key.endswith("_names"):
                base = key[: -len("_names")]
                for column in (base, f"{base}_label"):
                    source.label_names.setdefault(column, tuple(value.split(",")))
        return source.add(split, table.to_pandas(), str(path), lambda i: f"row {i + 1}")
    text = _decode_utf8(path)
    if path.suffix == ".csv":
        from io import StringIO

        # only empty cells are missing: a review that says "NA" is text
        try:
            frame = pd.read_csv(StringIO(text), keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise InputError([f"{path}: not a valid CSV file ({first_line(e)}); "
                              f"one header row, then one row per text"]) from None
        return source.add(split, frame, str(path), lambda i: f"line {i + 2}")
    if path.suffix == ".jsonl":
        return source.add(split, _parse_jsonl(path, text), str(path), lambda i: f"line {i + 1}")
    raise InputError([f"{path}: unsupported file type {path.suffix!r}; use {', '.join(TABLE_EXTS)} or .label"])


def _decode_utf8(path: Path) -> str:
    return decode_utf8(path.read_bytes(), path)


def decode_utf8(data: bytes, path: str | Path) -> str:
    """UTF-8 text, or InputError naming the line and byte offset of the first undecodable byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError([f"{path}: line {line}: byte {data[e.start]:#04x} at offset {e.start} is not valid UTF-8; "
                          f"re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"]) from None


def _parse_jsonl(path: Path, text: str) -> pd.DataFrame:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError([f"{path}: line {n}: not valid JSON ({e.msg}); one JSON object per line"]) from None
        if not isinstance(row, dict):
            raise InputError([f"{path}: line {n}: expected a JSON object, got {type(row).__name__}"])
        rows.append(row)
    return pd.DataFrame(rows)


def _read_aclimdb(root: Path, source: Source) -> None:
    """`<split>/<label>/<id>_<rating>.txt`; label directories become label names (neg, pos)."""
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        rows = []
        for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and p.name != "unsup"):
            for file in sorted(label_dir.glob("*.txt"), key=_natural_key):
                rows.append((_decode_utf8(file), label_dir.name, str(file.relative_to(root))))
        if rows:
            frame = pd.DataFrame(rows, columns=["text", "label", "file"])
            source.add(split_dir.name, frame, str(split_dir), lambda i, f=frame: f"file {f.file.iat[i]}")


def _natural_key(path: Path) -> tuple:
    stem = path.stem.split("_")[0]
    return (0, int(stem), path.name) if stem.isdigit() else (1, 0, path.name)


def _read_trec(path: Path, split: str, source: Source) -> None:
    """`COARSE:fine question words` per line, Latin-1. The fine label is part of the label, not the text."""
    rows = []
    for line in path.read_bytes().decode("latin-1").splitlines():
        if not line.strip():
            continue
        label, _, text = line.replace("\xf0", " ").partition(" ")  # 0xF0 -> space, as HF `trec` does
        rows.append((text.strip(), label.split(":")[0], label))
    frame = pd.DataFrame(rows, columns=["text", "coarse_label", "fine_label"])
    source.add(split, frame, str(path), lambda i: f"line {i + 1}")


def _read_hub(name: str) -> Source:
    import datasets

    try:
        dataset = datasets.load_dataset(name)
    except Exception as e:  # offline, unknown name, gated: all end the same way for the user
        raise InputError([f"data.name: {name!r} is not a local path, not in $TEXTCLF_ASSETS/data, and could "
                          f"not be loaded from the Hugging Face hub ({type(e).__name__}); check the name or "
                          f"set TEXTCLF_ASSETS"]) from None
    source = Source(uri=f"hf://{name}")
    for split, part in dataset.items():
        for column, feature in part.features.items():
            if isinstance(feature, datasets.ClassLabel):
                source.label_names.setdefault(column, tuple(feature.names))
        source.add(split, part.to_pandas(), f"hf://{name}[{split}]", lambda i: f"row {i + 1}")
    return source
