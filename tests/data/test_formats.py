"""Data where users keep it: datasets save_to_disk directories, .arrow files, TSV, JSON arrays,
gzip'd text formats and a hub name from the local datasets cache; each kind validated like every
other source."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import datasets
import pandas as pd
import pytest
from test_data import problems_of, splits_of

from conftest import sentiment_frame

FEATURES = datasets.Features(
    {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
)


def frames() -> dict[str, pd.DataFrame]:
    train = sentiment_frame(200, seed=1).assign(
        text=lambda f: [f"{t} {i}" for i, t in enumerate(f.text)]
    )
    test = sentiment_frame(60, seed=2).assign(
        text=lambda f: [f"{t} test {i}" for i, t in enumerate(f.text)]
    )
    return {"train": train, "test": test}


def dataset_dict() -> datasets.DatasetDict:
    return datasets.DatasetDict(
        {
            s: datasets.Dataset.from_pandas(f, features=FEATURES, preserve_index=False)
            for s, f in frames().items()
        }
    )


WRITERS = {  # one split per file; the rows of frames() in every format
    "parquet": lambda f, p: f.to_parquet(p.with_suffix(".parquet")),
    "csv": lambda f, p: f.to_csv(p.with_suffix(".csv"), index=False),
    "tsv": lambda f, p: f.to_csv(p.with_suffix(".tsv"), sep="\t", index=False),
    "jsonl": lambda f, p: f.to_json(p.with_suffix(".jsonl"), orient="records", lines=True),
    "json": lambda f, p: p.with_suffix(".json").write_text(f.to_json(orient="records")),
    "csv.gz": lambda f, p: Path(f"{p}.csv.gz").write_bytes(
        gzip.compress(f.to_csv(index=False).encode())
    ),
    "tsv.gz": lambda f, p: Path(f"{p}.tsv.gz").write_bytes(
        gzip.compress(f.to_csv(sep="\t", index=False).encode())
    ),
    "jsonl.gz": lambda f, p: Path(f"{p}.jsonl.gz").write_bytes(
        gzip.compress(f.to_json(orient="records", lines=True).encode())
    ),
    "json.gz": lambda f, p: Path(f"{p}.json.gz").write_bytes(
        gzip.compress(f.to_json(orient="records").encode())
    ),
    "arrow": lambda f, p: _arrow(f, p),
}


def _arrow(frame: pd.DataFrame, path: Path) -> None:
    saved = path.parent / f".{path.name}-dataset"
    datasets.Dataset.from_pandas(frame, features=FEATURES, preserve_index=False).save_to_disk(
        str(saved)
    )
    [arrow] = saved.glob("*.arrow")
    shutil.copy(arrow, path.with_suffix(".arrow"))
    shutil.rmtree(saved)


@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_file_kind_gives_the_same_rows_and_split_fingerprint(tmp_path, kind):
    reference = tmp_path / "parquet"
    reference.mkdir()
    for split, frame in frames().items():
        WRITERS["parquet"](frame, reference / split)
        (tmp_path / kind).mkdir(exist_ok=True)
        WRITERS[kind](frame, tmp_path / kind / split)
    expected = splits_of(reference, "data.label_names=neg,pos")
    got = splits_of(tmp_path / kind, "data.label_names=neg,pos")
    assert (len(got.train), len(got.val), len(got.test)) == (180, 20, 60)
    assert got.fingerprint == expected.fingerprint


@pytest.mark.parametrize("single", [False, True])
def test_save_to_disk_directories_keep_their_splits_and_class_label_names(tmp_path, single):
    path = tmp_path / "saved"
    if single:  # a single Dataset is the train split: pool it and split
        dataset_dict()["train"].save_to_disk(str(path))
        s = splits_of(path, "data.split=pool")
        assert len(s.train) + len(s.val) + len(s.test) == 200
    else:
        dataset_dict().save_to_disk(str(path))
        s = splits_of(path)
        assert len(s.test) == 60
        reference = tmp_path / "parquet"
        reference.mkdir()
        for split, frame in frames().items():
            frame.to_parquet(reference / f"{split}.parquet")
        assert s.fingerprint == splits_of(reference, "data.label_names=neg,pos").fingerprint
    assert s.label_names == ("neg", "pos")  # from the ClassLabel feature


def test_a_hub_name_loads_from_the_local_datasets_cache_offline(tmp_path, monkeypatch):
    """HF_DATASETS_OFFLINE=1 (set for every test) and a warm cache: `load_dataset` reads the cache,
    no network."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    built = dataset_dict()
    target = cache / "someone___tiny" / "default" / "0.0.0" / "0123abcd"
    target.mkdir(parents=True)
    for split, part in built.items():  # the layout `load_dataset` leaves after a download
        scratch = tmp_path / f"scratch-{split}"
        part.save_to_disk(str(scratch))
        [arrow] = scratch.glob("*.arrow")
        shutil.copy(arrow, target / f"tiny-{split}.arrow")
    info = {
        "config_name": "default",
        "dataset_name": "tiny",
        "builder_name": "parquet",
        "version": {"version_str": "0.0.0", "major": 0, "minor": 0, "patch": 0},
        "features": built["train"].features.to_dict(),
        "splits": {
            s: {"name": s, "num_examples": len(p), "dataset_name": "tiny"} for s, p in built.items()
        },
    }
    (target / "dataset_info.json").write_text(json.dumps(info))
    s = splits_of("someone/tiny")
    assert s.uri == "hf://someone/tiny" and s.label_names == ("neg", "pos") and len(s.test) == 60


BAD = {
    "missing column": (lambda f: f.rename(columns={"text": "review"}), "column 'text' not found"),
    "unknown label": (
        lambda f: f.assign(label=lambda x: x.label.where(x.index != 3, 7)),
        "label is outside the label map",
    ),
    "empty split": (lambda f: f.iloc[:0], "has no rows; the train split is empty"),
}


@pytest.mark.parametrize("kind", ["tsv", "json", "jsonl.gz", "saved"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_in_every_new_kind_is_one_line_naming_the_file(tmp_path, kind, case):
    change, expected = BAD[case]
    bad = {**frames(), "train": change(frames()["train"])}
    path = tmp_path / kind
    if kind == "saved":
        features = None if case in ("missing column", "unknown label") else FEATURES
        datasets.DatasetDict(
            {
                s: datasets.Dataset.from_pandas(f, preserve_index=False, features=features)
                for s, f in bad.items()
            }
        ).save_to_disk(str(path))
    else:
        path.mkdir()
        for split, frame in bad.items():
            WRITERS[kind](frame, path / split)
    problems = problems_of(path, "data.label_names=neg,pos")
    assert len(problems) == 1 and expected in problems[0], problems
    assert str(path) in problems[0]


def test_a_json_file_must_be_an_array_of_objects(tmp_path):
    (tmp_path / "train.json").write_text('{"text": "one object, not an array"}')
    [problem] = problems_of(tmp_path / "train.json", "data.split=pool")
    assert problem == f"{tmp_path / 'train.json'}: expected an array of JSON objects, got dict"
    (tmp_path / "broken.json").write_text('[{"text": "a", "label": 1},\n {"text": oops}]')
    [problem] = problems_of(tmp_path / "broken.json", "data.split=pool")
    assert problem.startswith(f"{tmp_path / 'broken.json'}: line 2: not valid JSON")


def test_data_inspect_reads_the_new_kinds(cli, tmp_path, tiny_model):
    dataset_dict().save_to_disk(str(tmp_path / "saved"))
    code, out, err = cli(
        "data",
        "inspect",
        "--data",
        tmp_path / "saved",
        "--model",
        tiny_model,
        "--max-length",
        "16",
        "-o",
        "data.max_length=16",
    )
    assert code == 0, err
    assert "labels per source split" in out and "neg" in out and "test" in out


def test_the_readme_lists_every_format_and_layout_the_tables_read():
    """data/files.py's format tables and data/readers.py's layouts are the one list of what textclf
    reads; the README's Sources list names each entry (and a new entry fails here until it does)."""
    from conftest import ROOT
    from textclf.data.files import BINARY_FORMATS, TEXT_FORMATS
    from textclf.data.readers import LAYOUTS

    readme = (ROOT / "README.md").read_text()
    sources = readme[
        readme.index("Sources (`data.name`") : readme.index("Every kind is validated the same way")
    ]
    names = [f.name for f in (*BINARY_FORMATS.values(), *TEXT_FORMATS.values())] + [
        layout.name for layout in LAYOUTS
    ]
    missing = [name for name in names if name not in sources]
    assert not missing, f"README.md's Sources list does not name {missing}"
