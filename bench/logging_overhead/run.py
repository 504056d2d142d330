"""bench/logging_overhead: how much of a run's time MLflow logging takes, against an embedded SQLite
store and against a real `mlflow server` on 127.0.0.1.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.logging_overhead.run \
        [--model all-MiniLM-L6-v2] [--train-fraction 0.01] [--max-length 128] [--epochs 2]

Each textclf call into MLflow during the run is timed in place (the tracking functions and ActiveRun
methods are wrapped, not changed). Reported: the per-epoch logging while training
(ActiveRun.log_epoch, through the spool) as a fraction of the training step time, which the issue
bounds at 1%; and the once-per-run setup and results logging (params, dataset inputs, plots, model)
in seconds. Prints one JSON object.
"""

import collections
import time

from bench.common import emit, imdb, machine, parser, workdir
from textclf.config import load_config
from textclf.ops import server
from textclf.run import train_run
from textclf.tracking import models, runs, store

# where each timed call lives: what run.py calls through a module or an ActiveRun
TIMED = {
    "connect": store,
    "log_setup": runs.ActiveRun,
    "log_trainable": runs.ActiveRun,
    "log_epoch": runs.ActiveRun,
    "drain": runs.ActiveRun,
    "log_results": runs.ActiveRun,
    "log_model": models,
}


def timed_run(overrides: list[str], uri: str) -> dict:
    spent = collections.defaultdict(list)
    originals = {name: getattr(owner, name) for name, owner in TIMED.items()}

    def wrap(name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name].append(time.perf_counter() - start)

        return timed

    for name, fn in originals.items():
        setattr(TIMED[name], name, wrap(name, fn))
    try:
        result = train_run(load_config(None, overrides), uri)
    finally:
        for name, fn in originals.items():
            setattr(TIMED[name], name, fn)
    m = result.metrics
    epoch_logging = sum(spent["log_epoch"])
    return {
        "epoch_log_calls": len(spent["log_epoch"]),
        "epoch_logging_s": epoch_logging,
        "epoch_log_call_ms": [round(1000 * s, 2) for s in spent["log_epoch"]],
        "train_step_time_s": m["train_step_time_s"],
        "fit_time_s": m["train_time_s"],
        "epoch_logging_fraction_of_step_time": epoch_logging / m["train_step_time_s"],
        "once_per_run_s": {k: round(sum(v), 3) for k, v in spent.items() if k != "log_epoch"},
        "total_time_s": m["total_time_s"],
        "test_accuracy": m["test_accuracy"],
    }


def main() -> None:
    args = parser(__doc__, train_fraction=0.01, max_length=128, epochs=2).parse_args()
    work = workdir("logging")
    overrides = imdb(args, "train.patience=0", "tracking.experiment=logging-bench")
    out = {"hardware": machine(), "settings": vars(args)}
    # a warm-up run first: imports and caches, not measured
    timed_run(
        [*overrides, "tracking.log_model=false", "train.epochs=1"],
        f"sqlite:///{work / 'warmup.db'}",
    )
    out["sqlite"] = timed_run(overrides, f"sqlite:///{work / 'mlflow.db'}")
    with server.running(
        f"sqlite:///{work / 'server.db'}", work / "artifacts", work / "server.log"
    ) as (_, url):
        out["mlflow_server"] = timed_run(overrides, url)
    emit(out)


if __name__ == "__main__":
    main()
