"""From a data source to validated, labeled train/val/test splits with fingerprints.

Split semantics (data.split), all stratified by label and seeded by data.seed only:
- pool: pool every labeled row (train and test files), carve val and test once from the whole pool,
then keep
  a `train_fraction` of the remaining training rows. Every fraction and every model is scored on the
  same
  val/test rows, and a smaller fraction's training rows lie inside a larger one's.
- subset (the course notebooks): pool, keep a `train_fraction` subset, then split the subset into
  train/val/test. Val and test change with the fraction: not comparable across fractions.
- provided: keep the source's test split; carve a validation set from train; then keep a
`train_fraction`
  of the remaining training rows.
Exact duplicate texts are dropped before splitting (one copy kept; in `provided` mode, training rows
whose text is in the test split), and texts seen with two labels are dropped everywhere, so no text
is in two splits. docs/methodology.md defines all of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

import pandas as pd

from textclf.assets import resolve
from textclf.config import DataConfig
from textclf.data.draws import SPLITS, split_rows
from textclf.data.labels import label_frames
from textclf.data.readers import read_source
from textclf.data.source import Source
from textclf.errors import InputError, raise_if

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame  # columns: text (str), label (int in 0..K-1)
    val: pd.DataFrame
    test: pd.DataFrame
    label_names: tuple[str, ...]
    fingerprint: str  # hash of the rows of each split and the label map
    uri: str  # where the rows came from
    # hash of the val and test rows and the label map: runs that share it compare
    eval_fingerprint: str = ""
    # rows removed before splitting, by reason
    dropped: dict[str, int] = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def split_fingerprints(self) -> dict[str, str]:
        """Each split's own fingerprint (its rows and the label map): the runs' dataset digests."""
        return {
            name: fingerprint({name: part}, self.label_names)
            for name, part in self.frames().items()
        }


def load_source(data: DataConfig) -> Source:
    resolved = resolve(data.name, "data")
    if isinstance(resolved, str):
        raise InputError([f"{data.where('data.name')}: data.name: {resolved}"])
    source = read_source(resolved)
    if data.trec_parse == "notebook":
        notebook_trec_texts(source, data.where("data.trec_parse"))
    return source


# TREC's `COARSE:fine` label: the parquet mirror's, the .label parser's
FINE_COLUMNS = ("fine_name", "fine_label")


def notebook_trec_texts(source: Source, where: str) -> None:
    """Notebook 003's parse of each raw line `COARSE:fine words ... ?`: the second ':'-piece,
    lowercased, last character cut. It keeps the fine label as the first word (and drops anything
    after a later ':')."""
    for split, frame in source.splits.items():
        fine = next(
            (
                c
                for c in FINE_COLUMNS
                if c in frame and frame[c].astype(str).str.contains(":").all()
            ),
            None,
        )
        if fine is None:
            raise InputError(
                [
                    f"{where}: data.trec_parse: notebook needs TREC rows with a "
                    f"`COARSE:fine` label column ({' or '.join(FINE_COLUMNS)}); "
                    f"{source.files[split]} has none. Use data.trec_parse=clean for "
                    "other data"
                ]
            )
        # the line as the notebook read it
        lines = frame[fine].astype(str) + " " + frame["text"] + "\n"
        source.splits[split] = frame.assign(
            text=lines.map(lambda line: line.split(":")[1].lower()[:-1])
        )


def load_splits(data: DataConfig, source: Source | None = None) -> Splits:
    """Read (or take `source`: the Python API's in-memory splits), validate and split; raises
    InputError listing every problem with file and row."""
    source = source or load_source(data)
    used = [data.train_split] + ([data.test_split] if _wants_test(data, source) else [])
    if data.split == "given":
        used.insert(1, data.val_split)
    frames, names = label_frames(source, used, data)
    frames, dropped = drop_duplicates(frames, data)
    train, val, test = split_rows(frames, data)
    raise_if(
        [
            f"{data.where('data.train_fraction')}: data: the {name} split is empty after "
            f"splitting {sum(len(f) for f in frames.values())} rows; raise data.train_fraction "
            "or the split sizes"
            for name, part in zip(SPLITS, (train, val, test), strict=False)
            if len(part) == 0
        ]
    )
    parts = dict(zip(SPLITS, (train, val, test), strict=False))
    return Splits(
        train,
        val,
        test,
        names,
        fingerprint(parts, names),
        source.uri,
        fingerprint({k: parts[k] for k in ("val", "test")}, names),
        dropped,
    )


def _wants_test(data: DataConfig, source: Source) -> bool:
    present = data.test_split in source.splits
    if data.split == "given" and data.val_split not in source.splits:
        raise InputError(
            [
                f"{data.where('data.val_split')}: data.val_split: no split "
                f"{data.val_split!r} in {source.uri} (splits: "
                f"{', '.join(source.splits)}); name the validation split, or set "
                "data.split=provided to carve one from train"
            ]
        )
    if data.split in ("provided", "given") and not present:
        raise InputError(
            [
                f"{data.where('data.test_split')}: data.test_split: no split "
                f"{data.test_split!r} in {source.uri} (splits: "
                f"{', '.join(source.splits)}); name one, or set data.split=pool to carve "
                "the test set from the pooled rows"
            ]
        )
    return present


def drop_duplicates(
    frames: dict[str, pd.DataFrame], d: DataConfig
) -> tuple[dict[str, pd.DataFrame], dict]:
    """No text in two splits: texts seen with two labels are dropped everywhere; of exact duplicates
    one copy is kept (in `provided` mode the test split stays whole and training rows repeating a
    test text go)."""
    every = pd.concat(list(frames.values()), ignore_index=True)
    labels_per_text = every.groupby("text", sort=False)["label"].nunique()
    conflicting = set(labels_per_text.index[labels_per_text > 1])
    frames = {k: f[~f.text.isin(conflicting)].reset_index(drop=True) for k, f in frames.items()}
    conflicts = len(every) - sum(map(len, frames.values()))
    if conflicts:
        log.warning(
            "dropped %d rows of %d texts that appear with different labels, e.g. %r",
            conflicts,
            len(conflicting),
            next(iter(conflicting))[:80],
        )
    before = sum(map(len, frames.values()))
    if d.split == "given":  # test whole; val without test texts; train without val or test texts
        held = set(frames[d.test_split].text)
        val = frames[d.val_split].drop_duplicates("text")
        val = val[~val.text.isin(held)].reset_index(drop=True)
        train = frames[d.train_split].drop_duplicates("text")
        train = train[~train.text.isin(held | set(val.text))].reset_index(drop=True)
        frames = {**frames, d.val_split: val, d.train_split: train}
    elif d.split == "provided":
        test = frames.get(d.test_split)
        train = frames[d.train_split].drop_duplicates("text").reset_index(drop=True)
        if test is not None:
            train = train[~train.text.isin(set(test.text))].reset_index(drop=True)
        frames = {**frames, d.train_split: train}
    else:
        pool = pd.concat(list(frames.values()), ignore_index=True).drop_duplicates("text")
        frames = {"pool": pool.reset_index(drop=True)}
    duplicates = before - sum(map(len, frames.values()))
    if duplicates:
        log.info("dropped %d rows that repeat another row's text (one copy kept)", duplicates)
    return frames, {"duplicate_rows": duplicates, "conflicting_label_rows": conflicts}


def fingerprint(parts: dict[str, pd.DataFrame], names: tuple[str, ...]) -> str:
    """sha256 over the label map and, per named split, the sorted hashes of (text, label) rows."""
    digest = hashlib.sha256(json.dumps(list(names)).encode())
    for name, part in parts.items():
        rows = sorted(
            hashlib.sha1(f"{t}\x1f{y}".encode()).digest()
            for t, y in zip(part.text, part.label, strict=False)
        )
        digest.update(name.encode() + len(rows).to_bytes(8, "little") + b"".join(rows))
    return digest.hexdigest()[:16]
