import json

import numpy as np
import pandas as pd
import pytest

from conftest import sentiment_frame
from textclf.config import load_config
from textclf.data import fingerprint, load_splits
from textclf.errors import InputError


def splits_of(name, *overrides):
    return load_splits(load_config(None, [f"data.name={name}", *overrides]).data)


def problems_of(name, *overrides) -> list[str]:
    with pytest.raises(InputError) as e:
        splits_of(name, *overrides)
    return e.value.problems


# --- sources
# -------------------------------------------------------------------------------------------


def test_parquet_directory_with_provided_split(tiny_data):
    s = splits_of(tiny_data, "data.label_names=neg,pos")
    assert (len(s.train), len(s.val), len(s.test)) == (216, 24, 80)  # val = 10% of train, test kept
    assert s.label_names == ("neg", "pos")
    assert set(s.train.columns) == {"text", "label"} and s.train.label.dtype == np.int64


def test_given_split_uses_the_sources_validation_split_and_refuses_a_missing_one(tmp_path):
    sizes = (("train", 120), ("dev", 30), ("test", 40))
    frames = {name: sentiment_frame(n, seed=i) for i, (name, n) in enumerate(sizes)}
    frames = {
        name: f.assign(text=f.text + f" {name}" + f.index.astype(str)) for name, f in frames.items()
    }
    # a dev text repeated in test: dropped from dev
    frames["dev"].loc[0, "text"] = frames["test"].text.iloc[0]
    for name, frame in frames.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    s = splits_of(tmp_path, "data.split=given", "data.val_split=dev", "data.train_fraction=0.5")
    assert (len(s.train), len(s.val), len(s.test)) == (60, 29, 40)
    assert set(s.val.text) <= set(frames["dev"].text) and not set(s.val.text) & set(s.test.text)
    [problem] = problems_of(tmp_path, "data.split=given")
    assert "data.val_split: no split 'val' in" in problem and "splits: dev, test, train" in problem


def test_csv_and_jsonl_files_with_configurable_columns(tmp_path):
    frame = sentiment_frame(50).rename(columns={"text": "review", "label": "sentiment"})
    frame["sentiment"] = frame.sentiment.map({0: "negative", 1: "positive"})
    frame.to_csv(tmp_path / "train.csv", index=False)
    with open(tmp_path / "test.jsonl", "w") as f:
        for row in frame.head(20).assign(review=lambda x: x.review + " again").to_dict("records"):
            f.write(json.dumps(row) + "\n")
    s = splits_of(tmp_path, "data.text_column=review", "data.label_column=sentiment")
    assert s.label_names == ("negative", "positive")  # string labels keep their names (sorted)
    assert (len(s.train) + len(s.val), len(s.test)) == (50, 20)


def test_a_single_file_is_the_train_split_and_pool_mode_splits_it(tmp_path):
    sentiment_frame(100).to_csv(tmp_path / "all.csv", index=False)
    problems = problems_of(tmp_path / "all.csv")
    assert "data.test_split: no split 'test'" in problems[0] and "data.split=pool" in problems[0]
    s = splits_of(tmp_path / "all.csv", "data.split=pool")
    assert (len(s.train), len(s.val), len(s.test)) == (80, 10, 10)
    assert s.label_names == ("0", "1")  # integer labels without names are named by value


def test_aclimdb_layout(tmp_path):
    for split in ("train", "test"):
        for label in ("neg", "pos", "unsup"):
            d = tmp_path / split / label
            d.mkdir(parents=True)
            for i in range(12):
                (d / f"{i}_{3 if label == 'neg' else 8}.txt").write_text(
                    f"{label} {split} review number {i}"
                )
    s = splits_of(tmp_path)
    assert s.label_names == ("neg", "pos")  # unsup is not a label
    assert len(s.test) == 24 and len(s.train) + len(s.val) == 24
    assert all(t.startswith("neg") for t in s.test[s.test.label == 0].text)


def test_trec_label_files_coarse_and_fine(tmp_path):
    (tmp_path / "train_5500.label").write_bytes(
        b"".join(
            b"DESC:manner How did serfdom develop ?\nENTY:cremat What films featured Popeye ?\n"
            b"HUM:ind Who killed Gandhi ?\nDESC:def What is a sister\xf0city ?\n".replace(
                b" ?", b" %d ?" % i
            )
            for i in range(5)
        )
    )
    (tmp_path / "TREC_10.label").write_bytes(
        b"HUM:desc Who was Galileo ?\nDESC:def What is an atom ?\n"
    )
    coarse = splits_of(tmp_path, "data.label_column=coarse_label", "data.val_size=4")
    assert coarse.label_names == ("DESC", "ENTY", "HUM")
    fine = splits_of(tmp_path, "data.label_column=fine_label", "data.val_size=4")
    assert fine.label_names == ("DESC:def", "DESC:manner", "ENTY:cremat", "HUM:desc", "HUM:ind")
    texts = set(fine.train.text) | set(fine.val.text)
    assert "How did serfdom develop 0 ?" in texts  # the label token is not part of the text
    assert "What is a sister city 0 ?" in texts  # Latin-1 0xF0 becomes a space, as in HF trec


def test_parquet_metadata_names_integer_labels(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split in ("train", "test"):
        frame = pd.DataFrame(
            {
                "text": [f"{split} q {i}" for i in range(30)],
                "coarse_label": [i % 3 for i in range(30)],
            }
        )
        table = pa.Table.from_pandas(frame).replace_schema_metadata(
            {"coarse_names": "ABBR,DESC,ENTY"}
        )
        pq.write_table(table, tmp_path / f"{split}.parquet")
    assert splits_of(tmp_path, "data.label_column=coarse_label").label_names == (
        "ABBR",
        "DESC",
        "ENTY",
    )


def test_given_label_names_must_agree_with_the_names_the_source_carries(tmp_path):
    """data.label_names name codes 0..K-1 in order: given in another order than the source's own
    names, they would rename whole classes (main took them on trust); the same names in the same
    order are fine."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split in ("train", "test"):
        frame = pd.DataFrame(
            {"text": [f"{split} q {i}" for i in range(30)], "label": [i % 2 for i in range(30)]}
        )
        pq.write_table(
            pa.Table.from_pandas(frame).replace_schema_metadata({"label_names": "neg,pos"}),
            tmp_path / f"{split}.parquet",
        )
    assert splits_of(tmp_path, "data.label_names=neg,pos").label_names == ("neg", "pos")
    [problem] = problems_of(tmp_path, "data.label_names=pos,neg")
    assert (
        "data.label_names: [pos, neg] disagrees with the classes" in problem
        and "give them in that order" in problem
    )
    [problem] = problems_of(tmp_path, "data.label_names=bad,good")
    assert "[neg, pos]" in problem and "drop data.label_names" in problem


def test_hub_datasets_are_read_through_datasets(monkeypatch):
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    frame = sentiment_frame(40)
    fake = datasets.DatasetDict(
        {
            s: datasets.Dataset.from_pandas(
                frame.assign(text=frame.text + f" {s}"), features=features, preserve_index=False
            )
            for s in ("train", "test")
        }
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda name: fake)
    s = splits_of("someone/sentiment")
    assert (
        s.label_names == ("neg", "pos") and s.uri == "hf://someone/sentiment" and len(s.test) == 40
    )


def test_an_unreachable_hub_name_is_one_clear_line(monkeypatch):
    monkeypatch.delenv("TEXTCLF_ASSETS", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    [problem] = problems_of("no-such-dataset-xyz")
    assert problem.startswith("data.name: 'no-such-dataset-xyz' is not a local path")


def test_mirror_names_resolve_through_textclf_assets(tmp_path, monkeypatch):
    (tmp_path / "data" / "mini").mkdir(parents=True)
    sentiment_frame(40).to_parquet(tmp_path / "data" / "mini" / "train.parquet")
    sentiment_frame(20).to_parquet(tmp_path / "data" / "mini" / "test.parquet")
    monkeypatch.setenv("TEXTCLF_ASSETS", str(tmp_path))
    assert len(splits_of("mini").test) == 20


# --- split semantics
# -----------------------------------------------------------------------------------


def test_pool_mode_is_stratified_10_10_then_the_training_fraction(tmp_path):
    frame = sentiment_frame(2000).assign(text=lambda f: [f"{t} {i}" for i, t in enumerate(f.text)])
    frame.iloc[:1000].to_parquet(tmp_path / "train.parquet")
    frame.iloc[1000:].to_parquet(tmp_path / "test.parquet")
    s = splits_of(tmp_path, "data.split=pool", "data.train_fraction=0.5")
    assert (len(s.train), len(s.val), len(s.test)) == (800, 200, 200)
    for part in (s.train, s.val, s.test):
        assert part.label.mean() == pytest.approx(0.5)  # both classes in proportion


def test_same_seed_same_split_whatever_the_training_settings(tiny_data):
    a = splits_of(tiny_data, "train.learning_rate=1e-3", "data.max_length=16", "train.seed=1")
    b = splits_of(tiny_data, "train.learning_rate=1e-5", "data.max_length=64", "train.seed=2")
    assert a.fingerprint == b.fingerprint
    pd.testing.assert_frame_equal(a.train, b.train)
    assert splits_of(tiny_data, "data.seed=7").fingerprint != a.fingerprint


@pytest.mark.parametrize("mode", ["provided", "pool"])
def test_smaller_fractions_are_nested_subsets(tiny_data, mode):
    small = splits_of(tiny_data, f"data.split={mode}", "data.train_fraction=0.25")
    large = splits_of(tiny_data, f"data.split={mode}", "data.train_fraction=0.75")
    assert set(small.train.text) < set(large.train.text) | set(large.val.text) | set(
        large.test.text
    )
    if mode == "provided":  # validation and test do not move when the training fraction changes
        pd.testing.assert_frame_equal(small.val, large.val)
        assert set(small.train.text) < set(large.train.text)


def test_row_counts_and_test_subsample(tiny_data):
    s = splits_of(tiny_data, "data.val_size=40", "data.test_size=0.5")
    assert (len(s.train), len(s.val), len(s.test)) == (200, 40, 40)


def test_fingerprint_covers_rows_and_label_map():
    def named(*frames):
        return dict(zip(("train", "val", "test"), frames, strict=False))

    parts = (sentiment_frame(10), sentiment_frame(4, 1), sentiment_frame(4, 2))
    base = fingerprint(named(*parts), ("neg", "pos"))
    assert (
        fingerprint(named(*(p.sample(frac=1, random_state=0) for p in parts)), ("neg", "pos"))
        == base
    )
    assert fingerprint(named(*parts), ("negative", "positive")) != base
    assert fingerprint(named(parts[0].iloc[1:], *parts[1:]), ("neg", "pos")) != base
    # rows moved between splits
    assert fingerprint(named(parts[1], parts[0], parts[2]), ("neg", "pos")) != base


# --- validation: one line per problem, naming file and row
# ---------------------------------------------


def write_pair(path, train: pd.DataFrame, ext="csv"):
    path.mkdir(exist_ok=True)
    for split, frame in (("train", train), ("test", sentiment_frame(10))):
        if ext == "csv":
            frame.to_csv(path / f"{split}.csv", index=False)
        else:
            frame.to_parquet(path / f"{split}.parquet")
    return path


def test_bad_rows_are_all_reported_with_file_and_line(tmp_path):
    frame = sentiment_frame(20).astype({"label": object})
    frame.loc[3, "text"] = "   "
    frame.loc[5, "text"] = ""
    frame.loc[7, "label"] = None
    frame.loc[9, "label"] = 5
    path = write_pair(tmp_path / "d", frame)
    problems = problems_of(path, "data.label_names=neg,pos")
    train = path / "train.csv"
    assert problems == [
        f"{train}: line 5: text is empty, whitespace or not a string (2 rows in all, first shown); "
        f"remove or fill these rows",
        f"{train}: line 9: label is missing; remove these rows or label them",
        f"{train}: line 11: label is outside the label map (2 labels: neg, pos); fix the rows "
        f"or set data.label_names",
    ]


def test_string_labels_outside_given_names(tmp_path):
    frame = sentiment_frame(10)
    frame["label"] = frame.label.map({0: "neg", 1: "pos"})
    frame.loc[2, "label"] = "neutral"
    [problem] = problems_of(
        write_pair(tmp_path / "d", frame, "parquet"), "data.label_names=neg,pos"
    )
    assert problem.endswith(
        "train.parquet: row 3: label is outside the label map (2 labels: neg, pos); "
        "fix the rows or set data.label_names"
    )


def test_missing_columns_are_named_with_the_fix(tmp_path):
    path = write_pair(tmp_path / "d", sentiment_frame(10).rename(columns={"label": "y"}))
    [problem] = problems_of(path)
    assert (
        problem == f"{path / 'train.csv'}: column 'label' not found (columns: text, y); "
        "set data.label_column"
    )


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "d"
    write_pair(path, sentiment_frame(10))
    (path / "train.csv").write_bytes(b"text,label\ngood film,1\ncaf\xe9 was bad,0\n")
    [problem] = problems_of(path)
    assert problem.startswith(
        f"{path / 'train.csv'}: line 3: byte 0xe9 at offset 26 is not valid UTF-8; re-encode"
    )


def test_bad_jsonl_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "good", "label": 1}\n{"text": oops}\n')
    [problem] = problems_of(tmp_path / "train.jsonl", "data.split=pool")
    assert problem.startswith(f"{tmp_path / 'train.jsonl'}: line 2: not valid JSON")


def test_empty_splits_are_rejected(tmp_path):
    sentiment_frame(4).assign(text=lambda f: f.text + " " + f.index.astype(str)).to_csv(
        tmp_path / "few.csv", index=False
    )
    problems = problems_of(tmp_path / "few.csv", "data.split=pool", "data.train_fraction=0.5")
    assert any("the val split is empty" in p for p in problems)
    (tmp_path / "empty.csv").write_text("text,label\n")
    assert problems_of(tmp_path / "empty.csv", "data.split=pool") == [
        f"{tmp_path / 'empty.csv'}: has no rows; the train split is empty"
    ]


def test_a_single_class_is_not_a_classification_task(tmp_path):
    frame = sentiment_frame(10)
    frame["label"] = 1
    [problem] = problems_of(
        write_pair(tmp_path / "d", frame), "data.split=pool", "data.test_split=none"
    )
    assert (
        problem
        == f"{tmp_path / 'd' / 'train.csv'}: column 'label' has 1 distinct label(s); a classifier "
        f"needs at least 2"
    )


def test_unknown_data_name_lists_the_fix(monkeypatch):
    [problem] = problems_of("./no/such/dir")
    assert (
        problem == "-o: data.name: './no/such/dir' does not exist; give an existing path or a name "
        "under $TEXTCLF_ASSETS/data/"
    )
