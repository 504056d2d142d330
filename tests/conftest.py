"""Shared fixtures: a tiny BERT checkpoint built in-process, synthetic data, an MLflow store, the
real assets."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

# tests never download anything, and stay quiet
os.environ.setdefault("TEXTCLF_CACHE", tempfile.mkdtemp(prefix="textclf-cache-"))  # not ~/.cache
os.environ.update(
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TRANSFORMERS_VERBOSITY="error",
    MLFLOW_LOGGING_LEVEL="WARNING",
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("MLFLOW_RUN_ID", None)

ROOT = Path(__file__).resolve().parents[1]
POSITIVE = ["good", "great", "fine", "love", "excellent", "superb", "wonderful"]
NEGATIVE = ["bad", "awful", "boring", "hate", "terrible", "poor", "dull"]
FILLER = ["the", "a", "movie", "film", "was", "is", "this", "plot", "actor"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER]


@pytest.fixture(autouse=True)
def isolated_environment():
    """MLflow 3's set_tracking_uri / set_experiment export MLFLOW_TRACKING_URI /
    MLFLOW_EXPERIMENT_ID "so that subprocesses inherit them": without a reset one test's store would
    leak into the next."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a 28-token vocabulary, saved as
    safetensors."""
    from transformers import BertConfig, BertModel, BertTokenizer, set_seed

    path = tmp_path_factory.mktemp("tiny-bert")
    # transformers 5 takes `vocab=`; a `vocab_file=` keyword is silently ignored (5-token
    # vocabulary)
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, model_max_length=64)
    set_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


FAMILIES = ("bert", "distilbert", "roberta", "mpnet", "gpt2")  # gpt2: the unsupported-family errors


def save_tiny(family: str, path: Path) -> Path:
    """A tiny random checkpoint of `family` (FAMILIES) with the shared vocabulary."""
    import transformers
    from transformers import BertTokenizer, set_seed

    set_seed(0)
    size = dict(vocab_size=len(VOCAB), max_position_embeddings=66, pad_token_id=0)
    if family == "distilbert":
        config = transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37, **size)
    elif family == "gpt2":
        config = transformers.GPT2Config(
            n_layer=1, n_embd=32, n_head=4, vocab_size=len(VOCAB), pad_token_id=0
        )
    else:
        config = getattr(
            transformers,
            {"bert": "BertConfig", "roberta": "RobertaConfig", "mpnet": "MPNetConfig"}[family],
        )(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, **size)
    transformers.AutoModel.from_config(config).save_pretrained(path)
    BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, model_max_length=64).save_pretrained(
        path
    )
    return path


def sentiment_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Texts of 4-12 words; the label is whether positive words outnumber negative ones."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(POSITIVE if label else NEGATIVE, size=rng.integers(2, 5)))
        words += list(rng.choice(FILLER, size=rng.integers(2, 8)))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return pd.DataFrame(rows, columns=["text", "label"])


@pytest.fixture(scope="session")
def tiny_families(tmp_path_factory) -> dict[str, Path]:
    """One tiny checkpoint per family, built once per test session."""
    return {family: save_tiny(family, tmp_path_factory.mktemp(family)) for family in FAMILIES}


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A dataset directory with train.parquet (240 rows) and test.parquet (80 rows)."""
    path = tmp_path / "sentiment"
    path.mkdir()
    sentiment_frame(240, seed=1).to_parquet(path / "train.parquet")
    sentiment_frame(80, seed=2).to_parquet(path / "test.parquet")
    return path


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One SQLite store for the session (creating one costs ~1 s of migrations); tests use own
    experiments."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tiny_overrides(tiny_model, tiny_data, request) -> list[str]:
    experiment = request.node.name.replace("[", "_").replace("]", "")[:60]
    return [
        f"model.name={tiny_model}",
        f"data.name={tiny_data}",
        "data.label_names=neg,pos",
        "data.max_length=32",
        "train.epochs=3",
        "train.batch_size=16",
        "train.learning_rate=5e-3",
        "train.warmup_ratio=0",
        "train.progress=false",
        f"tracking.experiment={experiment}",
    ]


@pytest.fixture(scope="session")
def assets() -> Path:
    """The real mirror ($TEXTCLF_ASSETS or ../shared/assets); end-to-end tests skip without it."""
    path = Path(os.environ.get("TEXTCLF_ASSETS") or ROOT.parent / "shared" / "assets")
    if not (path / "models" / "all-MiniLM-L6-v2").is_dir():
        pytest.skip(f"real assets not found at {path}; set TEXTCLF_ASSETS")
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory: the default stores (mlflow.db, optuna.db, mlartifacts/) would
    appear here."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `textclf ARGS` in-process through main(); returns (exit code, stdout, stderr)."""
    from textclf.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["textclf", *map(str, args)])
        code = 0
        try:
            main(leave_at_once=False)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def write(tmp_path: Path, tree: dict, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture
def tiny_sweep(tmp_path, tiny_model, tiny_data) -> Path:
    return write_tiny_sweep(tmp_path, tiny_model, tiny_data)


def write_tiny_sweep(
    tmp_path: Path,
    tiny_model: Path,
    tiny_data: Path,
    grid: list[dict] | None = None,
    experiment: str = "tiny-sweep",
    **train,
) -> Path:
    """A base config on the tiny model and a 3-point grid: one trial completes, one is pruned after
    its second epoch of three (a learning rate too small to move, below the pruner's 0.75 floor;
    never at the last epoch, whose compute is spent), one fails (top9 on a 2-block model). `grid`
    and `train` (train section values) replace those; `experiment` names the MLflow experiment."""
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {
            "epochs": 3,
            "batch_size": 16,
            "learning_rate": 5e-3,
            "warmup_ratio": 0,
            "progress": False,
        }
        | train,
        "tracking": {"experiment": experiment, "log_model": False},
    }
    write(tmp_path, base, "base.yaml")
    return write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {
                "sampler": "grid",
                "pruner": "threshold",
                "pruner_args": {"lower": 0.75, "n_warmup_steps": 2},
            },
            "grid": grid
            or [
                {"train.learning_rate": 5e-3},
                {"train.learning_rate": 1e-9},
                {"model.freeze": "top9"},
            ],
        },
    )


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory, tiny_model) -> dict[str, str]:
    """The tiny 3-point grid (one trial COMPLETE, one PRUNED, one FAIL) run once per session in
    its own stores: {"tracking_uri", "storage", "parent_run_id", "experiment", "dir", "summary"
    (what it printed)}. Read it; do not change it."""
    from textclf.studies.request import SweepRequest
    from textclf.studies.sweep import run_sweep
    from textclf.tracking import queries

    directory = tmp_path_factory.mktemp("finished-sweep")
    data = directory / "sentiment"
    data.mkdir()
    sentiment_frame(240, seed=1).to_parquet(data / "train.parquet")
    sentiment_frame(80, seed=2).to_parquet(data / "test.parquet")
    spec = write_tiny_sweep(directory, tiny_model, data)
    uri, storage = f"sqlite:///{directory / 'mlflow.db'}", f"sqlite:///{directory / 'optuna.db'}"
    saved = dict(os.environ)  # a session fixture runs outside the per-test environment reset
    try:
        summary = run_sweep(SweepRequest(str(spec), storage=storage, tracking_uri=uri)).summary
        parent = queries.sweep_parent("sweep")[0]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        "tracking_uri": uri,
        "storage": storage,
        "parent_run_id": parent,
        "experiment": "tiny-sweep",
        "dir": str(directory),
        "summary": summary,
    }


@contextlib.contextmanager
def mlflow_server(store: Path, log_path: Path, artifacts: Path | None = None):
    """`mlflow server` (textclf.server) on a free 127.0.0.1 port over a SQLite store; yields its
    URL."""
    from textclf.ops import server

    try:
        proc, url = server.start(
            f"sqlite:///{store}", artifacts or store.parent / "mlartifacts", log_path
        )
    except RuntimeError:
        pytest.fail(f"mlflow server did not start:\n{log_path.read_text()[-3000:]}")
    try:
        yield url
    finally:
        server.stop(proc)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1 (initdb/pg_ctl, run as the `postgres` user
    when we are root: PostgreSQL refuses to run as root); yields a function that creates a
    database and returns its URL. Skips without the server binaries or psycopg2."""
    import shutil
    import subprocess
    import tempfile

    from textclf.ops.server import free_port

    bin_dir = Path("/usr/lib/postgresql/15/bin")
    if not (bin_dir / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 not installed at {bin_dir}")
    pytest.importorskip(
        "psycopg", reason="psycopg (pip install -e '.[postgres]') is needed for PostgreSQL"
    )
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="textclf-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def run(*argv):
        subprocess.run(
            [*as_postgres, *map(str, argv)], check=True, capture_output=True, timeout=120
        )

    run(bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    run(
        bin_dir / "pg_ctl",
        "-D",
        data,
        "-l",
        root / "log",
        "-w",
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300",
        "start",
    )

    def database(name: str) -> str:
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def needs_small_batches(monkeypatch, largest: int, error=None) -> None:
    """Training raises CUDA's out-of-memory error (simulated; or `error`) for micro-batches above
    `largest` rows."""
    import torch

    import textclf.run

    real_fit = textclf.run.fit

    def fit(model, train, val, cfg, *args, **kwargs):
        if cfg.batch_size > largest:
            raise error or torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (simulated)"
            )
        return real_fit(model, train, val, cfg, *args, **kwargs)

    monkeypatch.setattr(textclf.run, "fit", fit)


# simulated configurations, for the verdicts' calibration and power tests (tests/stats,
# tests/reporting)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.verdicts.simulate import configuration, pair  # noqa: E402, F401


def tolerance(rate: float, sims: int) -> float:
    return 3 * np.sqrt(rate * (1 - rate) / sims)  # 3 Monte Carlo standard errors


def train_command(uri: str, overrides: list[str], *extra: str) -> list[str]:
    """`textclf train` in a fresh Python process, logging to `uri`, with each override as `-o`."""
    return [
        sys.executable,
        "-m",
        "textclf",
        "train",
        "--tracking-uri",
        uri,
        *[a for o in [*overrides, *extra] for a in ("-o", o)],
    ]
