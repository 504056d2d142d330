"""Every file kind textclf reads, damaged every way (docs/reliability.md, "Damaged files"): zero
bytes, truncated, wrong magic (random bytes), not UTF-8, a directory where the file belongs.

A user's file (data in every accepted format, the model's files, config and sweep YAML, the study
storage) is refused with one line naming it, exit 2, before anything exists; a cache (the token
cache) is rebuilt, never trusted; a torn checkpoint is never loaded. Permission denied cannot be
made for root (root reads every file): those cases skip with that reason where the suite runs as
root.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import save_tiny, sentiment_frame, write

GOOD = sentiment_frame(60, seed=1)
TEST = sentiment_frame(20, seed=2)


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(len(data) // 3, 1)])


def wrong_magic(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def not_utf8(path: Path) -> None:
    path.write_bytes(b"text,label\ncaf\xe9 au lait,1\n" + b"\xff\xfe fine,0\n" * 20)


def a_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("x")


def unreadable(path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("permission denied cannot be made for root: root reads every file")
    path.chmod(0)


DAMAGES = {
    "zero bytes": zero_bytes,
    "truncated": truncated,
    "wrong magic": wrong_magic,
    "not UTF-8": not_utf8,
    "a directory": a_directory,
    "permission denied": unreadable,
}


def table(frame, path: Path) -> None:
    """`frame` written as the format `path`'s name says."""
    name = path.name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    elif name.endswith(".csv.gz"):
        with gzip.open(path, "wt") as f:
            frame.to_csv(f, index=False)
    elif name.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    elif name.endswith(".json"):
        frame.to_json(path, orient="records")
    elif name.endswith(".label"):
        path.write_text(
            "".join(
                f"{'NUM' if y else 'DESC'}:x {t}\n"
                for t, y in zip(frame.text, frame.label, strict=False)
            )
        )
    else:
        raise ValueError(name)


DATA_FORMATS = ["parquet", "csv", "tsv", "jsonl", "json", "csv.gz"]


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("fmt", DATA_FORMATS)
def test_a_damaged_data_file_is_refused_in_one_line_naming_it(
    fmt, damage, cli, tmp_path, tiny_overrides, workdir
):
    data = tmp_path / "data"
    data.mkdir()
    table(GOOD, data / f"train.{fmt}")
    table(TEST, data / f"test.{fmt}")
    DAMAGES[damage](data / f"train.{fmt}")
    refused(cli, workdir, [*tiny_overrides, f"data.name={data}"], f"train.{fmt}")


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_trec_label_file_is_refused_in_one_line_naming_it(
    damage, cli, tmp_path, tiny_overrides, workdir
):
    data = tmp_path / "trec"
    data.mkdir()
    table(GOOD, data / "train_5500.label")
    table(TEST, data / "TREC_10.label")
    if damage == "truncated":
        pytest.skip(
            "a label file cut part-way is a shorter valid file (its last question lost words)"
        )
    DAMAGES[damage](data / "train_5500.label")
    refused(
        cli,
        workdir,
        [
            *tiny_overrides,
            f"data.name={data}",
            "data.label_column=coarse_label",
            "data.label_names=[]",
        ],
        "train_5500.label",
    )


MODEL_FILES = ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"]


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("file", MODEL_FILES)
def test_a_damaged_model_file_is_refused_in_one_line_naming_it(
    file, damage, cli, tmp_path, tiny_overrides, workdir
):
    import transformers

    transformers.utils.logging.disable_progress_bar()
    model = save_tiny("bert", tmp_path / "model")
    transformers.utils.logging.enable_progress_bar()
    DAMAGES[damage](model / file)
    refused(cli, workdir, [*tiny_overrides, f"model.name={model}"], file)


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("kind", ["config", "sweep"])
def test_a_damaged_yaml_file_is_refused_in_one_line_naming_it(
    kind, damage, cli, tmp_path, tiny_sweep, workdir
):
    path = tmp_path / f"damaged_{kind}.yaml"
    if kind == "sweep":
        shutil.copy(tiny_sweep, path)
    else:
        write(tmp_path, {"train": {"epochs": 1}, "tracking": {"experiment": "damaged"}}, path.name)
    DAMAGES[damage](path)
    args = ["sweep", path] if kind == "sweep" else ["train", "--config", path]
    before = sorted(p.name for p in workdir.iterdir())
    code, _, err = cli(*args)
    # a truncated file may parse, with several problems: one line each
    lines = err.strip().splitlines()
    assert code == 2 and lines and all(path.name in line for line in lines), err[-2000:]
    assert sorted(p.name for p in workdir.iterdir()) == before


@pytest.mark.parametrize("damage", ["truncated", "wrong magic", "a directory"])  # 0 bytes: an empty
def test_a_damaged_study_storage_is_refused_in_one_line_naming_it(
    damage, cli, tmp_path, tiny_sweep, workdir
):
    import optuna

    storage = tmp_path / "optuna.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{storage}")
    DAMAGES[damage](storage)
    code, _, err = cli("sweep", tiny_sweep, "--storage", f"sqlite:///{storage}")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "optuna.db" in err, err[-2000:]


@pytest.mark.parametrize("damage", ["zero bytes", "truncated", "wrong magic", "a directory"])
def test_a_damaged_token_cache_is_rebuilt_not_trusted(damage, tmp_path, tiny_model):
    from transformers import AutoTokenizer

    from textclf.data import tokens

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = list(GOOD.text)
    first = tokens.tokenize(texts, tokenizer, 32, 64, directory=tmp_path)
    (cache,) = tmp_path.glob("*.npz")
    DAMAGES[damage](cache)
    again = tokens.tokenize(texts, tokenizer, 32, 64, directory=tmp_path)
    # nothing read from the damaged file: every text tokenized
    assert again.misses == len(set(texts))
    assert all(np.array_equal(a, b) for a, b in zip(first.ids, again.ids, strict=False))
    if damage != "a directory":  # rebuilt in place
        assert tokens.tokenize(texts, tokenizer, 32, 64, directory=tmp_path).misses == 0


def refused(cli, workdir: Path, overrides: list[str], name: str) -> None:
    before = sorted(p.name for p in workdir.iterdir())
    code, _, err = cli("train", *[a for o in overrides for a in ("-o", o)])
    lines = err.strip().splitlines()
    assert code == 2, err[-3000:]
    assert len(lines) == 1 and name in lines[0], lines
    assert sorted(p.name for p in workdir.iterdir()) == before  # nothing created


@pytest.mark.parametrize(
    "damage", ["zero bytes", "wrong magic", "not UTF-8", "a directory", "bad entries"]
)
def test_a_damaged_metric_journal_is_moved_aside_never_replayed(
    damage, cli, tmp_path, workdir, caplog
):
    """Every train and sweep replays dead runs' journals when it starts: a damaged one must not stop
    them (it used to raise UnicodeDecodeError / IsADirectoryError in every later command)."""
    journals = tmp_path / "journal"
    journals.mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    import mlflow

    mlflow.MlflowClient(uri).search_experiments()  # the store exists
    path = journals / "0123456789abcdef.jsonl"
    path.write_text(
        f'{{"uri": "{uri}", "run_id": "0123456789abcdef", "pid": 1}}\n["loss", 1.0, 1, 0]\n'
    )
    if damage == "bad entries":
        path.write_text(path.read_text() + '["loss", "not a number", "x", null]\n[1, 2]\n')
    else:
        DAMAGES[damage](path)
    code, _out, err = cli("sync", "--tracking-uri", uri, "--journal-dir", journals)
    assert code == 0, err[-2000:]
    assert not path.exists() or damage == "bad entries", "moved aside"
    if damage != "bad entries":
        assert (journals / f"{path.name}.damaged").exists()
        assert f"{path.name}" in caplog.text and "moved aside" in caplog.text
    assert "Traceback" not in err
