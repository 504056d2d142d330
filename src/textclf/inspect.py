"""`textclf data inspect`: what a dataset holds before anyone trains on it.

Counts per split and label, token-length percentiles with the model's tokenizer, truncation rate at
each max length, exact duplicates within and across splits, and label names leaking into the text.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from textclf.config import Config
from textclf.data import label_frames, load_source, load_splits
from textclf.model.build import Backbone

PERCENTILES = (50, 90, 95, 99)


def inspect_data(
    cfg: Config, backbone: Backbone, max_lengths: Sequence[int], sample: int | None = None
) -> dict[str, pd.DataFrame]:
    source = load_source(cfg.data)
    columns = {cfg.data.text_column, cfg.data.label_column}
    present = sorted(
        (s for s, f in source.splits.items() if columns <= set(f)),
        key=lambda s: (s != cfg.data.train_split, s != cfg.data.test_split, s),
    )
    frames, names = label_frames(source, present or [cfg.data.train_split], cfg.data)
    splits = load_splits(cfg.data)
    return {
        "labels per source split": label_counts(frames, names),
        f"splits used for training (data.split={cfg.data.split})": label_counts(
            splits.frames(), names
        ),
        f"token lengths ({cfg.model.name}, special tokens included)": token_lengths(
            frames, backbone.tokenizer, max_lengths, sample, cfg.data.seed
        ),
        "exact duplicates within a split": duplicates(frames),
        "texts shared across splits": shared_texts(frames),
        "label names found in the text": label_leaks(frames, names),
        "other label columns leading the text": leading_columns(
            source, present, cfg.data.text_column, cfg.data.label_column
        ),
    }


def label_counts(frames: dict[str, pd.DataFrame], names: tuple[str, ...]) -> pd.DataFrame:
    table = pd.DataFrame(
        {s: np.bincount(f.label, minlength=len(names)) for s, f in frames.items()},
        index=pd.Index(names, name="label"),
    )
    table.loc["total"] = table.sum()
    return table


def token_lengths(
    frames: dict[str, pd.DataFrame],
    tokenizer,
    max_lengths: Sequence[int],
    sample: int | None,
    seed: int,
) -> pd.DataFrame:
    rows = {}
    for split, frame in frames.items():
        texts = frame.text
        if sample and len(texts) > sample:
            texts = texts.sample(sample, random_state=seed)
        ids = tokenizer(list(texts), return_attention_mask=False, return_token_type_ids=False)
        lengths = np.fromiter(map(len, ids["input_ids"]), dtype=np.int64)
        row = {"texts": len(lengths), "mean": lengths.mean()}
        row |= {f"p{q}": np.percentile(lengths, q) for q in PERCENTILES}
        row["max"] = lengths.max()
        row |= {f"truncated@{m}": (lengths > m).mean() for m in max_lengths}
        rows[split] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def duplicates(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows repeating an earlier text of the same split, and texts seen there with two labels."""
    rows = {}
    for split, frame in frames.items():
        labels_per_text = frame.groupby("text").label.nunique()
        rows[split] = {
            "rows": len(frame),
            "unique texts": frame.text.nunique(),
            "duplicate rows": len(frame) - frame.text.nunique(),
            "texts with conflicting labels": int((labels_per_text > 1).sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def shared_texts(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Texts found in two splits: a test text seen in training inflates test accuracy."""
    rows = {
        f"{a} & {b}": {"texts in both": len(set(frames[a].text) & set(frames[b].text))}
        for a, b in itertools.combinations(frames, 2)
    }
    return (
        pd.DataFrame.from_dict(rows, orient="index", columns=["texts in both"])
        if rows
        else pd.DataFrame({"note": ["only one split"]})
    )


def label_leaks(frames: dict[str, pd.DataFrame], names: tuple[str, ...]) -> pd.DataFrame:
    """How often a text contains its own label's name as a word, against any other label's name.

    The raw TREC lines start with `DESC:manner ...`: a parser that keeps that first token leaks
    the answer to the model."""
    worded = [n for n in names if re.search(r"[A-Za-z]", n)]
    if not worded:
        return pd.DataFrame({"note": ["label names are not words; nothing to check"]})
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(map(re.escape, sorted(worded, key=len, reverse=True))) + r")(?!\w)"
    )
    rows = {}
    for split, frame in frames.items():
        found = [set(pattern.findall(t)) for t in frame.text]
        own = np.mean([names[y] in f for y, f in zip(frame.label, found, strict=False)])
        other = np.mean(
            [
                len(f - {names[y]}) / max(len(names) - 1, 1)
                for y, f in zip(frame.label, found, strict=False)
            ]
        )
        rows[split] = {
            "own label name": own,
            "other label names": other,
            # a format leak is systematic (nearly every text); a name that is also a
            # telling word ("good" in positive reviews) is signal, and shows only as a
            # higher own rate
            "LEAK": bool(own >= 0.9 and own > other),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def leading_columns(source, splits: Sequence[str], text: str, label: str) -> pd.DataFrame:
    """How often a text starts with its row's value of another label-like column (TREC's
    `COARSE:fine` keeps 'fine'): notebook 003's parser left the fine label as the first word, so the
    coarse label is readable."""
    rows = {}
    for split in splits:
        frame = source.splits[split]
        first = frame[text].astype(str).str.split().str[0].str.lower()
        for column in frame.columns:
            if column in (text, label) or not pd.api.types.is_string_dtype(frame[column]):
                continue
            values = frame[column].astype(str).str.rsplit(":", n=1).str[-1].str.lower()
            rows[f"{split}: {column}"] = {"texts starting with it": float((first == values).mean())}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["texts starting with it"])
    table["LEAK"] = table["texts starting with it"] >= 0.9
    return table if rows else pd.DataFrame({"note": ["no other text columns to check"]})


def findings(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The lines worth acting on: leaked labels, texts shared across splits, conflicting labels."""
    lines = []
    for split, row in tables["label names found in the text"].iterrows():
        if row.get("LEAK"):
            lines.append(
                f"LEAK: {row['own label name']:.0%} of {split} texts contain their own "
                "label name (raw TREC lines start with it): the model can read the answer"
            )
    for where, row in tables.get("other label columns leading the text", pd.DataFrame()).iterrows():
        if row.get("LEAK"):
            split, column = str(where).split(": ")
            lines.append(
                f"LEAK: {row['texts starting with it']:.0%} of {split} texts start with "
                f"their {column} (notebook 003's TREC parse): the model can read the "
                "answer; use data.trec_parse=clean"
            )
    for pair, row in tables["texts shared across splits"].iterrows():
        if row.get("texts in both", 0) > 0:
            lines.append(f"{row['texts in both']} texts appear in both {pair}")
    for split, row in tables["exact duplicates within a split"].iterrows():
        if row["texts with conflicting labels"] > 0:
            lines.append(
                f"{row['texts with conflicting labels']} {split} texts carry two different labels"
            )
    return lines


def render(tables: dict[str, pd.DataFrame]) -> str:
    """The tables and the findings as the text `textclf data inspect` prints."""
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.precision", 3):
        text = "".join(f"\n== {title}\n{table}\n" for title, table in tables.items())
    return text + "\n== findings\n" + "\n".join(findings(tables) or ["nothing to flag"]) + "\n"


def as_json(tables: dict[str, pd.DataFrame]) -> str:
    return json.dumps(
        {t: json.loads(tab.to_json(orient="index")) for t, tab in tables.items()}, indent=1
    )
