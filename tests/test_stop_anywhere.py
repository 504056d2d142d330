"""Ctrl-C and SIGTERM end a command within 2 s wherever they land; here, while a large dataset is
being tokenized (the longest stretch spent in native code before a run starts): exit 130 or 143,
no MLflow run left RUNNING, no torn token cache."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import FILLER, NEGATIVE, POSITIVE, train_command


def large_dataset(path, rows: int = 120_000, words: int = 120) -> None:
    """Rows of `words` words from the tiny vocabulary: tens of seconds of tokenizing."""
    rng = np.random.default_rng(0)
    vocabulary = np.array([*POSITIVE, *NEGATIVE, *FILLER])
    picks = vocabulary[rng.integers(0, len(vocabulary), size=(rows, words))]
    # each row distinct (a number at its end): nothing is deduplicated away
    text = [" ".join(row) + f" {i}" for i, row in enumerate(picks)]
    frame = pd.DataFrame({"text": text, "label": np.arange(rows) % 2})
    path.mkdir()
    frame.to_parquet(path / "train.parquet")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_tokenization_ends_the_command_within_2_s(
    tiny_model, tmp_path, signum, code
):
    data, cache = tmp_path / "big", tmp_path / "cache"
    large_dataset(data)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        train_command(
            uri,
            [f"model.name={tiny_model}", f"data.name={data}", "data.split=pool"],
            *("data.max_length=32", "train.progress=false", "tracking.experiment=stop"),
        ),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TEXTCLF_CACHE": str(cache)},
    )
    started = threading.Event()
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "tokenizing" in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while not started.wait(0.2) and proc.poll() is None and time.monotonic() < deadline:
        pass
    assert started.is_set(), "".join(lines)
    time.sleep(1.0)  # well inside the tokenizing
    assert proc.poll() is None, "".join(lines)
    sent = time.monotonic()
    proc.send_signal(signum)
    proc.wait(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == code, "".join(lines)
    assert took <= 2.0, f"exited {took:.1f} s after the signal"
    mlflow.set_tracking_uri(uri)
    assert not [
        r
        for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
        if r.info.status == "RUNNING"
    ]
    leftovers = list(cache.rglob("*.tmp"))
    assert not leftovers, leftovers
    for saved in cache.rglob("*.npz"):  # a cache file, if any, is whole
        with np.load(saved) as whole:
            assert len(whole["offsets"]) == len(whole["keys"]) + 1
