"""Splits people can compare: fixed evaluation rows, nested training fractions, monotone stratified
quotas, no text in two splits, and the fingerprints that say which runs share their evaluation
rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import sentiment_frame
from textclf.config import load_config
from textclf.data import load_splits, take

FRACTIONS = [round(0.01 * i, 2) for i in range(1, 101)]


def splits_of(name, *overrides):
    return load_splits(load_config(None, [f"data.name={name}", *overrides]).data)


@pytest.fixture
def pool_4000(tmp_path):
    """4,000 distinct labeled texts (2,000 per file), as the issue's example pool."""
    frame = pd.DataFrame(
        {
            "text": [f"review {i} " + ("good" if i % 2 else "bad") for i in range(4000)],
            "label": [i % 2 for i in range(4000)],
        }
    )
    frame.iloc[:2000].to_parquet(tmp_path / "train.parquet")
    frame.iloc[2000:].to_parquet(tmp_path / "test.parquet")
    return tmp_path


def test_pool_scores_every_fraction_on_the_same_val_and_test_rows(pool_4000):
    runs = {
        f: splits_of(pool_4000, "data.split=pool", f"data.train_fraction={f}")
        for f in (0.25, 0.5, 1.0)
    }
    for f, s in runs.items():
        # 10% / 10% of the whole pool, whatever the fraction
        assert (len(s.val), len(s.test)) == (400, 400), f
        pd.testing.assert_frame_equal(s.val, runs[1.0].val)
        pd.testing.assert_frame_equal(s.test, runs[1.0].test)
        assert s.eval_fingerprint == runs[1.0].eval_fingerprint
    assert [len(s.train) for s in runs.values()] == [800, 1600, 3200]
    small, large = set(runs[0.25].train.text), set(runs[0.5].train.text)
    assert small < large  # strictly inside: none of the 0.25 training rows is a val/test row at 0.5
    assert not small & (set(runs[0.5].val.text) | set(runs[0.5].test.text))
    assert runs[0.25].fingerprint != runs[0.5].fingerprint  # the training rows differ


def test_pool_sizes_may_be_row_counts(pool_4000):
    s = splits_of(
        pool_4000,
        "data.split=pool",
        "data.val_size=500",
        "data.test_size=1000",
        "data.train_fraction=0.1",
    )
    assert (len(s.train), len(s.val), len(s.test)) == (250, 500, 1000)


def test_subset_is_the_notebook_procedure_and_moves_the_evaluation_rows(pool_4000):
    """Subset first, then train/val/test of the subset: sizes scale with the fraction (not
    comparable)."""
    half = splits_of(pool_4000, "data.split=subset", "data.train_fraction=0.5")
    assert (len(half.train), len(half.val), len(half.test)) == (1600, 200, 200)
    quarter = splits_of(pool_4000, "data.split=subset", "data.train_fraction=0.25")
    assert (len(quarter.train), len(quarter.val), len(quarter.test)) == (800, 100, 100)
    assert quarter.eval_fingerprint != half.eval_fingerprint
    notebook = splits_of(
        pool_4000, "data.split=subset", "data.train_fraction=0.25", "data.test_size=0.2"
    )
    # 001's 70/10/20
    assert (len(notebook.train), len(notebook.val), len(notebook.test)) == (
        700,
        100,
        200,
    )


def nests_per_class(labels: np.ndarray, seed: int = 42) -> list[str]:
    """Every fraction 0.01..1.0 of `labels`: the taken rows of each fraction contain the previous
    fraction's (so every pair nests: subsets chain), per class, and no class ever gets fewer
    rows."""
    frame = pd.DataFrame({"text": np.arange(len(labels)).astype(str), "label": labels})
    broken, previous = [], None
    for f in FRACTIONS:
        taken, rest = take(frame, round(f * len(frame)), seed)
        assert len(taken) == round(f * len(frame)) and len(taken) + len(rest) == len(frame)
        rows = {c: set(taken.text[taken.label == c]) for c in np.unique(labels)}
        if previous is not None:
            broken += [f"{f}: class {c}" for c in rows if not previous[c] <= rows[c]]
        previous = rows
    return broken


@pytest.mark.parametrize("files", [("train",), ("test",), ("train", "test")])
def test_stratified_quotas_nest_for_every_fraction_on_trec_fine(assets, files):
    trec = pd.concat([pd.read_parquet(assets / "data" / "trec" / f"{s}.parquet") for s in files])
    labels = pd.factorize(trec.fine_label)[0]
    assert len(np.unique(labels)) == (42 if files == ("test",) else 50)
    if files == ("test",):
        assert (np.bincount(labels) <= 2).sum() == 10  # ten classes of 1-2 rows
    assert nests_per_class(labels) == []


def test_stratified_quotas_nest_for_every_fraction_on_imdb(assets):
    labels = np.concatenate(
        [
            pd.read_parquet(assets / "data" / "imdb" / f"{s}.parquet", columns=["label"]).label
            for s in ("train", "test")
        ]
    )
    assert nests_per_class(labels) == []


def test_quotas_stay_stratified_and_ties_do_not_always_go_to_the_first_class():
    labels = np.repeat(np.arange(7), [1, 2, 5, 40, 100, 300, 552])
    frame = pd.DataFrame({"text": np.arange(len(labels)).astype(str), "label": labels})
    shares = np.bincount(labels) / len(labels)
    for count in range(1, len(labels) + 1, 7):
        got = np.bincount(take(frame, count, 3)[0].label, minlength=7)
        assert np.all(np.abs(got - shares * count) < 1.5), (count, got)
    even = pd.DataFrame({"text": np.arange(200).astype(str), "label": np.arange(200) % 2})
    winners = {
        int(take(even, count, seed)[0].label.sum() > count // 2)
        for count in range(1, 60, 2)
        for seed in (1, 2)
    }
    assert winners == {0, 1}  # the odd row goes to class 1 sometimes, to class 0 other times


def test_duplicate_texts_never_land_in_two_splits_and_conflicts_are_dropped(tmp_path):
    train = sentiment_frame(300, seed=1)
    train["text"] = [f"{t} {i}" for i, t in enumerate(train.text)]
    test = train.iloc[:40].copy()  # 40 texts in both files
    within = train.iloc[50:60].copy()  # 10 duplicates inside train
    # 2 texts seen with both labels
    conflict = train.iloc[[70, 71]].assign(label=lambda f: 1 - f.label)
    pd.concat([train, within, conflict]).to_parquet(tmp_path / "train.parquet")
    test.to_parquet(tmp_path / "test.parquet")
    for mode in ("pool", "subset", "provided"):
        s = splits_of(tmp_path, f"data.split={mode}", "data.label_names=neg,pos")
        texts = [set(p.text) for p in (s.train, s.val, s.test)]
        assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2]), mode
        assert not {train.text.iat[70], train.text.iat[71]} & set.union(*texts), mode
        assert s.dropped["conflicting_label_rows"] == 4, mode
    pooled = splits_of(tmp_path, "data.split=pool", "data.label_names=neg,pos")
    assert pooled.dropped["duplicate_rows"] == 50  # 40 across the files, 10 inside train
    assert len(pooled.train) + len(pooled.val) + len(pooled.test) == 300 - 2
    provided = splits_of(tmp_path, "data.split=provided", "data.label_names=neg,pos")
    # the test file stays whole
    assert provided.dropped["duplicate_rows"] == 50 and len(provided.test) == 40


def test_pooled_imdb_has_no_text_in_two_splits(assets):
    s = load_splits(
        load_config(
            None,
            [
                f"data.name={assets / 'data' / 'imdb'}",
                "data.split=pool",
                "data.val_size=500",
                "data.test_size=1000",
                "data.train_fraction=0.08",
            ],
        ).data
    )
    pooled = pd.concat(
        [pd.read_parquet(assets / "data" / "imdb" / f"{x}.parquet") for x in ("train", "test")]
    )
    assert s.dropped == {
        "duplicate_rows": len(pooled) - pooled.text.nunique(),
        "conflicting_label_rows": 0,
    }
    texts = [set(p.text) for p in (s.train, s.val, s.test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_eval_fingerprint_covers_val_test_and_labels_only(pool_4000):
    a = splits_of(pool_4000, "data.split=pool", "data.train_fraction=0.3")
    b = splits_of(pool_4000, "data.split=pool", "data.train_fraction=0.6")
    assert a.eval_fingerprint == b.eval_fingerprint and a.fingerprint != b.fingerprint
    assert (
        splits_of(pool_4000, "data.split=pool", "data.seed=1").eval_fingerprint
        != a.eval_fingerprint
    )
    renamed = splits_of(
        pool_4000, "data.split=pool", "data.train_fraction=0.3", "data.label_names=x,y"
    )
    assert renamed.eval_fingerprint != a.eval_fingerprint
