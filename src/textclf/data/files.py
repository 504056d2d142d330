"""Table files, one split each: parquet, Arrow, CSV, TSV, JSON Lines, JSON (an array of objects),
and .gz of the text formats; the original aclImdb layout and TREC `.label` files. Every problem
names its file and line (or row) and the fix."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from textclf.data.source import Source
from textclf.errors import InputError, first_line


@dataclass(frozen=True)
class TextFormat:
    """A text table format: its name (as the README lists it), its parser, and where row i of the
    frame sits in the file (for error messages)."""

    name: str
    parse: Callable[[Path, str], pd.DataFrame]
    row: Callable[[int], str]


@dataclass(frozen=True)
class BinaryFormat:
    name: str
    read: Callable[[Path, str, Source], None]  # fills the split from the file


def table_ext(path: Path) -> str | None:
    """The table format of a file name (`.csv.gz` counts as one), or None."""
    name = path.name.lower()
    return next(
        (ext for ext in sorted(TABLE_EXTS, key=len, reverse=True) if name.endswith(ext)), None
    )


def split_name(path: Path) -> str:
    """`train.csv.gz` -> train."""
    ext = table_ext(path)
    return path.name[: -len(ext)] if ext else path.stem


def read_table(path: Path, split: str, source: Source) -> None:
    """One file, one split, in any format of the tables below."""
    ext = table_ext(path)
    if ext is None:
        supported = ", ".join(TABLE_EXTS)
        raise InputError(
            [f"{path}: unsupported file type {path.suffix!r}; use {supported} or .label"]
        )
    if path.stat().st_size == 0:
        raise InputError([f"{path}: the file is empty; it needs a text column and a label column"])
    if ext in BINARY_FORMATS:
        return BINARY_FORMATS[ext].read(path, split, source)
    data = path.read_bytes()
    if ext.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise InputError(
                [f"{path}: not a readable gzip file ({first_line(e)}); compress it with gzip"]
            ) from None
    form = TEXT_FORMATS[ext.removesuffix(".gz")]
    return source.add(split, form.parse(path, decode_utf8(data, path)), str(path), form.row)


def _read_parquet(path: Path, split: str, source: Source) -> None:
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow's errors share no useful base class
        raise InputError(
            [
                f"{path}: not a readable parquet file ({first_line(e)}); rewrite it with "
                "pandas.DataFrame.to_parquet"
            ]
        ) from None
    meta = {
        k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k != b"pandas"
    }
    for key, value in meta.items():  # coarse_names names the classes of coarse_label (or coarse)
        if key.endswith("_names"):
            base = key[: -len("_names")]
            for column in (base, f"{base}_label"):
                source.label_names.setdefault(column, tuple(value.split(",")))
    source.add(split, table.to_pandas(), str(path), lambda i: f"row {i + 1}")


def decode_utf8(data: bytes, path: str | Path) -> str:
    """UTF-8 text, or InputError naming the line and byte offset of the first undecodable byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(
            [
                f"{path}: line {line}: byte {data[e.start]:#04x} at offset {e.start} is "
                "not valid UTF-8; re-encode the file as UTF-8 (e.g. iconv -f latin1 -t "
                "utf-8)"
            ]
        ) from None


def _parse_delimited(path: Path, text: str, sep: str) -> pd.DataFrame:
    kind = "TSV" if sep == "\t" else "CSV"
    try:  # only empty cells are missing: a review that says "NA" is text
        return pd.read_csv(StringIO(text), sep=sep, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(
            [
                f"{path}: not a valid {kind} file ({first_line(e)}); one header row, "
                "then one row per text"
            ]
        ) from None


def _parse_jsonl(path: Path, text: str) -> pd.DataFrame:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(
                [f"{path}: line {n}: not valid JSON ({e.msg}); one JSON object per line"]
            ) from None
        if not isinstance(row, dict):
            raise InputError(
                [f"{path}: line {n}: expected a JSON object, got {type(row).__name__}"]
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _parse_json(path: Path, text: str) -> pd.DataFrame:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            [
                f"{path}: line {e.lineno}: not valid JSON ({e.msg}); an array of objects "
                f'[{{"text": ..., "label": ...}}, ...]'
            ]
        ) from None
    bad = (
        next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
        if isinstance(rows, list)
        else 0
    )
    if bad is not None:
        raise InputError(
            [
                f"{path}: expected an array of JSON objects, got {type(rows).__name__}"
                if not isinstance(rows, list)
                else f"{path}: object {bad + 1}: expected a JSON "
                "object, got "
                f"{type(rows[bad]).__name__}"
            ]
        )
    return pd.DataFrame(rows)


def _read_arrow(path: Path, split: str, source: Source) -> None:
    from textclf.data.hf import read_arrow  # datasets is imported only for Arrow files

    read_arrow(path, split, source)


# every table format, one entry each: a file `<split>.<ext>` (text formats also as `.gz`); the
# README's Sources list names each (tests/data/test_formats.py checks it)
BINARY_FORMATS: dict[str, BinaryFormat] = {
    ".parquet": BinaryFormat("parquet", _read_parquet),
    ".arrow": BinaryFormat("Arrow", _read_arrow),
}
TEXT_FORMATS: dict[str, TextFormat] = {
    ".csv": TextFormat(
        "CSV", lambda p, text: _parse_delimited(p, text, ","), lambda i: f"line {i + 2}"
    ),
    ".tsv": TextFormat(
        "TSV", lambda p, text: _parse_delimited(p, text, "\t"), lambda i: f"line {i + 2}"
    ),
    ".jsonl": TextFormat("JSONL", _parse_jsonl, lambda i: f"line {i + 1}"),
    ".json": TextFormat("JSON", _parse_json, lambda i: f"object {i + 1}"),
}
TABLE_EXTS = (*BINARY_FORMATS, *TEXT_FORMATS, *(e + ".gz" for e in TEXT_FORMATS))


def read_aclimdb(root: Path, source: Source) -> None:
    """`<split>/<label>/<id>_<rating>.txt`; label directories become label names (neg, pos)."""
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        rows = []
        for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and p.name != "unsup"):
            for file in sorted(label_dir.glob("*.txt"), key=_natural_key):
                rows.append(
                    (
                        decode_utf8(file.read_bytes(), file),
                        label_dir.name,
                        str(file.relative_to(root)),
                    )
                )
        if rows:
            frame = pd.DataFrame(rows, columns=["text", "label", "file"])
            source.add(split_dir.name, frame, str(split_dir), _file_of(frame))


def _file_of(frame: pd.DataFrame) -> Callable[[int], str]:
    """Where row i of an aclImdb split came from, for error messages."""
    return lambda i: f"file {frame.file.iat[i]}"


def _natural_key(path: Path) -> tuple:
    stem = path.stem.split("_")[0]
    return (0, int(stem), path.name) if stem.isdigit() else (1, 0, path.name)


def read_trec(path: Path, split: str, source: Source) -> None:
    """`COARSE:fine question words` per line, Latin-1; the fine label is not part of the text."""
    rows = []
    for line in path.read_bytes().decode("latin-1").splitlines():
        if not line.strip():
            continue
        # 0xF0 -> space, as HF `trec` does
        label, _, text = line.replace("\xf0", " ").partition(" ")
        rows.append((text.strip(), label.split(":")[0], label))
    frame = pd.DataFrame(rows, columns=["text", "coarse_label", "fine_label"])
    source.add(split, frame, str(path), lambda i: f"line {i + 1}")
