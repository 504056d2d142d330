"""bench/logging_overhead: how much of a run's time MLflow logging takes, against an embedded SQLite store
and against a real `mlflow server` on 127.0.0.1.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python bench/logging_overhead/run.py \
        [--model all-MiniLM-L6-v2] [--train-fraction 0.01] [--max-length 128] [--epochs 2]

Each textclf call into MLflow during the run is timed in place (the functions of textclf.tracking are
wrapped, not changed). Reported: the per-epoch logging while training (tracking.log_epoch, through the
spool) as a fraction of the training step time, which the issue bounds at 1%; and the once-per-run setup
and results logging (params, dataset inputs, plots, model) in seconds. Prints one JSON object.
"""
import argparse
import collections
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from textclf import server, tracking
from textclf.config import load_config
from textclf.run import train_run

TIMED = ("connect", "log_setup", "log_trainable", "log_epoch", "drain", "log_results", "log_model")


def timed_run(overrides: list[str], uri: str) -> dict:
    spent = collections.defaultdict(list)
    originals = {name: getattr(tracking, name) for name in TIMED}

    def wrap(name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name].append(time.perf_counter() - start)
        return timed

    for name, fn in originals.items():
        setattr(tracking, name, wrap(name, fn))
    try:
        result = train_run(load_config(None, overrides), uri)
    finally:
        for name, fn in originals.items():
            setattr(tracking, name, fn)
    m = result.metrics
    epoch_logging = sum(spent["log_epoch"])
    return {"epoch_log_calls": len(spent["log_epoch"]), "epoch_logging_s": epoch_logging,
            "epoch_log_call_ms": [round(1000 * s, 2) for s in spent["log_epoch"]],
            "train_step_time_s": m["train_step_time_s"], "fit_time_s": m["train_time_s"],
            "epoch_logging_fraction_of_step_time": epoch_logging / m["train_step_time_s"],
            "once_per_run_s": {k: round(sum(v), 3) for k, v in spent.items() if k != "log_epoch"},
            "total_time_s": m["total_time_s"], "test_accuracy": m["test_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--train-fraction", type=float, default=0.01)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logging-bench-"))
    os.environ.setdefault("TEXTCLF_CACHE", str(work / "cache"))
    overrides = [f"model.name={args.model}", "data.name=imdb", "data.split=subset",
                 f"data.train_fraction={args.train_fraction}", f"data.max_length={args.max_length}",
                 f"train.epochs={args.epochs}", "train.patience=0", "train.progress=false",
                 "tracking.experiment=logging-bench"]
    out = {"hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"torch {torch.__version__}, cuda={torch.cuda.is_available()}",
           "settings": vars(args)}
    timed_run(overrides + ["tracking.log_model=false", "train.epochs=1"], f"sqlite:///{work / 'warmup.db'}")  # warm caches
    out["sqlite"] = timed_run(overrides, f"sqlite:///{work / 'mlflow.db'}")
    with server.running(f"sqlite:///{work / 'server.db'}", work / "artifacts", work / "server.log") as (_, url):
        out["mlflow_server"] = timed_run(overrides, url)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
