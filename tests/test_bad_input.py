"""Hostile and careless input, table-driven: every case exits 2 with exactly one line naming the
file, row or key and the fix, before anything exists: no MLflow store, experiment or run, no Optuna
storage file or study (the working directory's default stores are checked, and existing stores are
unchanged byte for byte)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from conftest import save_tiny, sentiment_frame, write

GOOD_TRAIN = sentiment_frame(60, seed=1)


def data_dir(tmp_path, train: str | bytes, suffix: str = "csv"):
    """A dataset directory whose train file is `train` (raw text or bytes) and whose test file is
    fine."""
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    (path / f"train.{suffix}").write_bytes(train if isinstance(train, bytes) else train.encode())
    sentiment_frame(20, seed=2).to_csv(
        path / f"test.{suffix}", index=False
    ) if suffix == "csv" else sentiment_frame(20, seed=2).to_json(
        path / f"test.{suffix}", orient="records", lines=True
    )
    return path


def saved_dir(tmp_path, train: pd.DataFrame):
    """A datasets save_to_disk directory (DatasetDict train + test)."""
    import datasets

    path = tmp_path / "saved"
    datasets.disable_progress_bars()  # its bars would land in the command's captured stderr
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_pandas(train, preserve_index=False),
            "test": datasets.Dataset.from_pandas(sentiment_frame(20, seed=2), preserve_index=False),
        }
    ).save_to_disk(str(path))
    datasets.enable_progress_bars()
    return path


def other_kind(tmp_path, suffix: str, train: str):
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    (path / f"train.{suffix}").write_text(train)
    (path / f"test.{suffix}").write_text(
        sentiment_frame(20, seed=2).to_csv(sep="\t", index=False)
        if suffix == "tsv"
        else sentiment_frame(20, seed=2).to_json(orient="records")
    )
    return path


def good_csv(**changes) -> str:
    frame = GOOD_TRAIN.copy()
    for row, (column, value) in changes.items():
        frame.loc[int(row.removeprefix("r")), column] = value
    return frame.to_csv(index=False)


BROKEN_JSONL = GOOD_TRAIN.to_json(orient="records", lines=True) + '{"text": "oops", \n'
UNKNOWN_LABEL = GOOD_TRAIN.assign(label=lambda f: f.label.where(f.index != 4, 9))
NO_LABEL_TSV = GOOD_TRAIN.rename(columns={"label": "y"}).to_csv(sep="\t", index=False)
LATIN1 = b"text,label\ncaf\xe9 au lait,1\n" + b"fine text here,0\n" * 30  # not UTF-8


def python_tag_yaml(tmp_path) -> str:
    path = tmp_path / "python_tag.yaml"
    path.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    return str(path)


def damaged_model(tmp_path, file: str, damage) -> str:
    """A tiny BERT checkpoint whose `file` is damaged by `damage(path)`."""
    import transformers

    transformers.utils.logging.disable_progress_bar()  # its bar would land in the captured stderr
    path = save_tiny("bert", tmp_path / "damaged-model")
    transformers.utils.logging.enable_progress_bar()
    damage(path / file)
    return str(path)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe[PAD]\n")


def refused_port() -> int:
    from textclf.ops.server import free_port

    return free_port()  # nothing listens there


# `textclf train` cases: name -> (overrides or ["--config", file] or ["--tracking-uri", uri],
# expected text)
TRAIN = {
    "empty file": (lambda p: [f"data.name={data_dir(p, '')}"], "train.csv: the file is empty"),
    "whitespace text": (
        lambda p: [f"data.name={data_dir(p, good_csv(r3=('text', '   ')))}"],
        "train.csv: line 5: text is empty",
    ),
    "missing label": (
        lambda p: [f"data.name={data_dir(p, good_csv(r5=('label', None)))}"],
        "train.csv: line 7: label is missing",
    ),
    "out-of-range label": (
        lambda p: [f"data.name={data_dir(p, good_csv(r7=('label', 5)))}"],
        "train.csv: line 9: label is outside the label map",
    ),
    "bad encoding": (
        lambda p: [f"data.name={data_dir(p, LATIN1)}"],
        "train.csv: line 2: byte 0xe9 at offset 14 is not valid UTF-8",
    ),
    "wrong columns": (
        lambda p: [
            "data.name="
            + str(data_dir(p, GOOD_TRAIN.rename(columns={"text": "review"}).to_csv(index=False)))
        ],
        "column 'text' not found",
    ),
    "broken jsonl line": (
        lambda p: [f"data.name={data_dir(p, BROKEN_JSONL, 'jsonl')}"],
        "train.jsonl: line 61",
    ),
    "unknown label in save_to_disk": (
        lambda p: [f"data.name={saved_dir(p, UNKNOWN_LABEL)}"],
        "label is outside the label map",
    ),
    "missing column in TSV": (
        lambda p: [f"data.name={other_kind(p, 'tsv', NO_LABEL_TSV)}"],
        "column 'label' not found",
    ),
    "empty JSON train split": (
        lambda p: [f"data.name={other_kind(p, 'json', '[]')}"],
        "train.json: has no rows; the train split is empty",
    ),
    "unknown config key": (
        lambda p: ["train.learnin_rate=1e-3"],
        "train.learnin_rate: unknown key; did you mean",
    ),
    "invalid value": (
        lambda p: ["train.learning_rate=-1"],
        "train.learning_rate: must be in (0, 1)",
    ),
    "python tag in YAML": (
        lambda p: ["--config", python_tag_yaml(p)],
        "python_tag.yaml: not valid YAML",
    ),
    "value too long for a param": (
        lambda p: ["tracking.run_name=" + "x" * 7000],
        "tracking.run_name: too long",
    ),
    "token-looking value": (
        lambda p: ["tracking.run_name=hf_abcdefghijklmnopqrstuvwxyz0123"],
        "tracking.run_name: looks like a secret",
    ),
    "model limit exceeded": (
        lambda p: ["data.max_length=100"],
        "data.max_length: 100 is above the limit",
    ),
    "no such model": (
        lambda p: ["model.name=./no/such/model"],
        "model.name: './no/such/model' does not exist",
    ),
    "no such dataset": (
        lambda p: ["data.name=./no/such/data"],
        "data.name: './no/such/data' does not exist",
    ),
    "config not a mapping": (
        lambda p: ["--config", str(write(p, ["a", "b"], "list.yaml"))],
        "list.yaml: top level must be a mapping",
    ),
    "checkpoint dir is a file": (
        lambda p: ["train.checkpoint=true", f"train.checkpoint_dir={write(p, {}, 'f.yaml')}"],
        "train.checkpoint_dir: ",
    ),
    "checkpoint dir not writable": (
        lambda p: ["train.checkpoint=true", f"train.checkpoint_dir={write(p, {}, 'g.yaml')}/sub"],
        "train.checkpoint_dir: ",
    ),
    "cuda without a GPU": (
        lambda p: ["train.device=cuda"],
        "train.device: cuda, but no CUDA device is available",
    ),
    "unknown tracking scheme": (
        lambda p: ["--tracking-uri", "foo://bar"],
        "--tracking-uri foo://bar: unknown scheme 'foo'",
    ),
    "unreachable tracking server": (
        lambda p: [
            "--tracking-uri",
            f"http://127.0.0.1:{refused_port()}",
            "-o",
            "tracking.outage_wait_s=0",
        ],
        "no MLflow tracking server answered",
    ),
    "tracking uri in config with unknown scheme": (
        lambda p: ["tracking.uri=mongo://x"],
        "-o: tracking.uri mongo://x: unknown scheme 'mongo'",
    ),
    # names that become paths (report directories, registry and store entries): one rule for all
    "experiment name too long": (
        lambda p: ["tracking.experiment=" + "x" * 300],
        "tracking.experiment: 300 characters; a name that becomes a path",
    ),
    "experiment name with a line break": (
        lambda p: ["tracking.experiment=a\nb"],
        "tracking.experiment: 'a\\nb' has control characters",
    ),
    "registered name escaping": (
        lambda p: ["tracking.register_as=../x"],
        "tracking.register_as: '../x' must be letters, digits",
    ),
    # damaged model files: one line naming the file, never a traceback
    "truncated model weights": (
        lambda p: [f"model.name={damaged_model(p, 'model.safetensors', truncate)}"],
        "model.safetensors: cannot be read",
    ),
    "empty model config": (
        lambda p: [f"model.name={damaged_model(p, 'config.json', lambda f: f.write_text(''))}"],
        "config.json: cannot be read",
    ),
    "model weights replaced by a directory": (
        lambda p: [
            f"model.name={damaged_model(p, 'model.safetensors', lambda f: (f.unlink(), f.mkdir()))}"
        ],
        "model.safetensors: cannot be read",
    ),
    "truncated tokenizer file": (
        lambda p: [f"model.name={damaged_model(p, 'tokenizer.json', truncate)}"],
        "tokenizer.json: cannot be read",
    ),
    "tokenizer file not UTF-8": (
        lambda p: [f"model.name={damaged_model(p, 'tokenizer.json', not_utf8)}"],
        "tokenizer.json: cannot be read",
    ),
}

SPACE = {"train.learning_rate": {"loguniform": [1e-4, 1e-2]}}
RANDOM = {"sampler": "random", "n_trials": 2}

# `textclf sweep` cases: name -> (spec tree (base.yaml is written beside it) or a callable, extra
# args, text)
SWEEP = {
    "int step 0": (
        {"study": RANDOM, "space": {"train.epochs": {"int": [1, 3, 0]}}},
        [],
        "space.train.epochs: int step must be > 0, got 0",
    ),
    "uniform step negative": (
        {"study": RANDOM, "space": {"train.warmup_ratio": {"uniform": [0.0, 0.5, -0.1]}}},
        [],
        "space.train.warmup_ratio: uniform step must be > 0, got -0.1",
    ),
    "follows an unknown key": (
        {
            "study": RANDOM,
            "space": {**SPACE, "train.batch_size": {"follows": "data.max_len", "map": {32: 8}}},
        },
        [],
        "space.train.batch_size: follows data.max_len: unknown key",
    ),
    "follows cycle": (
        {
            "study": RANDOM,
            "space": {
                "train.batch_size": {"follows": "train.epochs", "map": {1: 8}},
                "train.epochs": {"follows": "train.batch_size", "map": {8: 1}},
            },
        },
        [],
        "follows rules form a cycle: train.batch_size -> train.epochs -> train.batch_size",
    ),
    "pruner args optuna rejects": (
        {
            "study": {**RANDOM, "pruner": "median", "pruner_args": {"n_startup_trials": -1}},
            "space": SPACE,
        },
        [],
        "study.pruner_args: ",
    ),
    "pruner args of the wrong name": (
        {"study": {**RANDOM, "pruner": "median", "pruner_args": {"warmup": 1}}, "space": SPACE},
        [],
        "study.pruner_args: ",
    ),
    "non-integer seed": (
        {"study": {**RANDOM, "seed": "abc"}, "space": SPACE},
        [],
        "study.seed: must be a whole number >= 0, got 'abc'",
    ),
    "base is a sweep file": (
        {"base": "other_sweep.yaml", "study": RANDOM, "space": SPACE},
        [],
        "base: other_sweep.yaml is a sweep file",
    ),
    "unknown objective": (
        {"objective": "test_acc", "study": RANDOM, "space": SPACE},
        [],
        "objective.test_acc: selecting on the test set is not allowed",
    ),
    "objective typo": (
        {"objective": "best_val_acc", "study": RANDOM, "space": SPACE},
        [],
        "objective.best_val_acc: not a metric textclf runs log",
    ),
    "override of a searched key": (
        {"study": RANDOM, "space": SPACE},
        ["-o", "train.learning_rate=1e-3"],
        "-o train.learning_rate=1e-3: the sweep",
    ),
    "bad data in the base": (
        {"study": RANDOM, "space": SPACE},
        ["-o", "data.name=./no/such/data"],
        "data.name: './no/such/data' does not exist",
    ),
    "no such model in the base": (
        {"study": RANDOM, "space": SPACE},
        ["-o", "model.name=./no/such/model"],
        "model.name: './no/such/model' does not exist",
    ),
    "unknown tracking scheme": (
        {"study": RANDOM, "space": SPACE},
        ["--tracking-uri", "foo://bar"],
        "--tracking-uri foo://bar: unknown scheme 'foo'",
    ),
    "unreachable tracking server": (
        {"study": RANDOM, "space": SPACE},
        lambda: [
            "--tracking-uri",
            f"http://127.0.0.1:{refused_port()}",
            "-o",
            "tracking.outage_wait_s=0",
        ],
        "no MLflow tracking server answered",
    ),
    "unknown storage scheme": (
        {"study": RANDOM, "space": SPACE},
        ["--storage", "redis://x"],
        "--storage redis://x: unknown scheme 'redis'",
    ),
    # accepted before, then `textclf report` failed on reports/<name> with OSError (name too long)
    "study name too long": (
        {"study": {**RANDOM, "name": "s" * 300}, "space": SPACE},
        [],
        "study.name: 300 characters; a name that becomes a path",
    ),
}


def fingerprint_of(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def assert_refused(
    code: int, err: str, expected: str, workdir: Path, before: dict[str, str]
) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and expected in lines[0], lines
    assert fingerprint_of(workdir) == before  # nothing created, nothing changed


@pytest.mark.parametrize("case", list(TRAIN))
def test_train_refuses_bad_input_in_one_line_before_anything_exists(
    case, cli, tmp_path, tiny_overrides, workdir
):
    make, expected = TRAIN[case]
    extra = make(tmp_path)
    flags = extra if extra[0].startswith("--") else [a for o in extra for a in ("-o", o)]
    before = fingerprint_of(workdir)
    code, _, err = cli("train", *[a for o in tiny_overrides for a in ("-o", o)], *flags)
    assert_refused(code, err, expected, workdir, before)


@pytest.mark.parametrize("case", list(SWEEP))
def test_sweep_refuses_bad_input_in_one_line_before_anything_exists(
    case, cli, tmp_path, tiny_model, tiny_data, workdir
):
    tree, args, expected = SWEEP[case]
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {"epochs": 1, "progress": False},
        "tracking": {"experiment": "hostile", "log_model": False},
    }
    write(tmp_path, base, "base.yaml")
    write(tmp_path, {"base": "base.yaml", "study": RANDOM, "space": SPACE}, "other_sweep.yaml")
    spec = write(tmp_path, {"base": "base.yaml", **tree})
    before = fingerprint_of(workdir)
    code, _, err = cli("sweep", spec, *(args() if callable(args) else args))
    assert_refused(code, err, expected, workdir, before)


def test_reopening_a_study_with_other_directions_is_refused_and_changes_nothing(
    cli, tmp_path, tiny_model, tiny_data, workdir
):
    import optuna

    write(
        tmp_path,
        {
            "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
            "model": {"name": str(tiny_model)},
        },
        "base.yaml",
    )
    spec = write(tmp_path, {"base": "base.yaml", "study": {**RANDOM, "name": "s"}, "space": SPACE})
    optuna.create_study(
        study_name="s", storage=f"sqlite:///{workdir / 'optuna.db'}", direction="minimize"
    )
    before = fingerprint_of(workdir)
    code, _, err = cli("sweep", spec)
    assert_refused(code, err, "study 's' in", workdir, before)
    assert "minimize" in err and "maximize" in err and "study.name" in err


def test_predict_names_file_line_and_byte_of_undecodable_input(cli, tmp_path, workdir):
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"fine text\ncaf\xe9 au lait\n")
    before = fingerprint_of(workdir)
    code, _, err = cli("predict", "--model-uri", str(tmp_path), "--input", path)
    assert_refused(
        code, err, f"{path}: line 2: byte 0xe9 at offset 13 is not valid UTF-8", workdir, before
    )


def test_predict_refuses_a_damaged_saved_model_in_one_line(cli, tmp_path, tiny_model, workdir):
    """textclf's own saved form (a custom head): its head weights truncated."""
    from textclf.config import load_config
    from textclf.model.build import build_classifier, load_backbone
    from textclf.model.saved import save_model_dir

    cfg = load_config(None, [f"model.name={tiny_model}", "model.head=cls", "data.max_length=32"])
    backbone = load_backbone(cfg.model, cfg.data)
    model = build_classifier(backbone, ("neg", "pos"), cfg.model)
    save_model_dir(model, backbone.tokenizer, tmp_path / "saved", 32, str(tiny_model))
    truncate(tmp_path / "saved" / "head.safetensors")
    before = fingerprint_of(workdir)
    code, _, err = cli("predict", "--model-uri", str(tmp_path / "saved"), "some text")
    assert_refused(code, err, "head.safetensors: cannot be read", workdir, before)


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["predict", "--model-uri", "./no/such/model", "some text"],
            "--model-uri ./no/such/model: ",
        ),
        (["predict", "--model-uri", "runs:/0123/model"], "predict: no texts given"),
        (
            ["report", "no-such-thing"],
            "no MLflow tracking store there; run where mlflow.db is, or pass --tracking-uri",
        ),
        (["reap", "--experiment", "x"], "reap: the default tracking store sqlite:///"),
        (
            ["data", "inspect", "--max-length", "12a"],
            "--max-length: expected comma-separated integers",
        ),
    ],
)
def test_other_commands_refuse_bad_input_in_one_line(cli, workdir, args, expected):
    before = fingerprint_of(workdir)
    code, _, err = cli(*args)
    assert_refused(code, err, expected, workdir, before)


def test_a_path_escape_in_a_study_name_is_refused(cli, tmp_path, tiny_sweep, workdir):
    """The study name names reports/<name>: `../` could write outside it."""
    spec = tiny_sweep.read_text().replace("study:", "study:\n  name: ../../outside\n", 1)
    (tmp_path / "escape.yaml").write_text(spec)
    before = fingerprint_of(workdir)
    code, _, err = cli("sweep", tmp_path / "escape.yaml")
    assert_refused(
        code,
        err,
        "study.name: '../../outside' must be letters, digits, '.', '_' or '-'",
        workdir,
        before,
    )


def test_the_table_covers_at_least_thirty_cases():
    assert len(TRAIN) + len(SWEEP) + 1 + 1 + 1 + 5 + 1 >= 30
