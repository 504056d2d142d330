"""bench/sweep: the first notebook's six (max length, learning rate) configurations as a grid study,
then a pruned TPE study over the same space, through `textclf sweep`'s own code (run_sweep), one
worker.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.sweep.run \
        [--model all-MiniLM-L6-v2] [--train-fraction 0.25] [--epochs 3] [--lengths 128,256,512] \
        [--lrs 5e-5,2e-5] [--tpe-trials 12]

Grid: total wall time, and the busy fraction: GPU utilisation sampled every 0.5 s through NVML when
available (torch.cuda.utilization), else the share of the wall time spent in training steps (from
each trial's logged train_step_time_s; a lower bound on device-busy time). TPE + median pruner over
the same lengths and a log-uniform learning rate between the grid's two: the device-seconds (sum of
trial wall times, pruned ones included, in the order they ran) until a trial's objective reaches the
grid's best, as a fraction of the grid's device-seconds (goal <= 50%). The defaults are the issue's
GPU setting; a CPU smoke run needs e.g. --train-fraction 0.004 --epochs 1 --lengths 32,64,128.
Prints one JSON object.
"""

import threading
import time
from pathlib import Path

import mlflow
import optuna
import torch
import yaml

from bench.common import ROOT, emit, machine, parser, workdir
from textclf.studies.request import SweepRequest
from textclf.studies.sweep import run_sweep


def write_spec(work: Path, name: str, args, study: dict, grid=None, space=None) -> Path:
    batch = {128: 32, 256: 16, 512: 8}
    tree = {
        "base": str(ROOT / "configs" / "imdb_minilm.yaml"),
        "config": {
            # the sizes of its recorded figures
            "data": {
                "train_fraction": args.train_fraction,
                "split": "subset",
                "val_size": 0.1,
                "test_size": 0.1,
            },
            "model": {"name": args.model},
            "train": {"epochs": args.epochs, "patience": 0, "progress": False},
            "tracking": {"experiment": f"bench-{name}", "log_model": False},
        },
        "study": {"name": name, **study},
        "space": {
            "train.batch_size": {
                "follows": "data.max_length",
                "map": {n: batch.get(n, 32) for n in args.lengths},
            },
            **(space or {}),
        },
    }
    if grid:
        tree["grid"] = grid
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


class Utilisation(threading.Thread):
    """GPU utilisation samples (NVML through torch), if the machine has a GPU and pynvml."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.done = [], threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            try:
                self.samples.append(torch.cuda.utilization())
            except Exception:  # no GPU or no NVML: the step-time share is reported instead
                return


def study_times(storage: str, name: str) -> list[tuple[float, float | None, str]]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [
        ((t.datetime_complete - t.datetime_start).total_seconds(), t.value, t.state.name)
        for t in sorted(study.trials, key=lambda t: t.datetime_start)
        if t.datetime_complete
    ]


def step_time(uri: str, name: str) -> float:
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(
        experiment_names=[f"bench-{name}"], filter_string="tags.mlflow.parentRunId != ''"
    )
    return float(runs.get("metrics.train_step_time_s", []).fillna(0).sum()) if len(runs) else 0.0


def main() -> None:
    parser_ = parser(__doc__, train_fraction=0.25, epochs=3)
    parser_.add_argument(
        "--lengths", type=lambda s: [int(x) for x in s.split(",")], default=[128, 256, 512]
    )
    parser_.add_argument(
        "--lrs", type=lambda s: [float(x) for x in s.split(",")], default=[5e-5, 2e-5]
    )
    parser_.add_argument("--tpe-trials", type=int, default=12)
    args = parser_.parse_args()
    work = workdir("sweep")
    storage, uri = f"sqlite:///{work / 'optuna.db'}", f"sqlite:///{work / 'mlflow.db'}"
    grid = write_spec(
        work,
        "grid",
        args,
        {"sampler": "grid"},
        grid=[
            {"data.max_length": n, "train.learning_rate": lr}
            for n in args.lengths
            for lr in args.lrs
        ],
    )
    tpe = write_spec(
        work,
        "tpe",
        args,
        {
            "sampler": "tpe",
            "pruner": "median",
            "n_trials": args.tpe_trials,
            "pruner_args": {"n_startup_trials": 3, "n_warmup_steps": 1},
        },
        space={
            "data.max_length": {"categorical": args.lengths},
            "train.learning_rate": {"loguniform": [min(args.lrs), max(args.lrs)]},
        },
    )
    sampler = Utilisation()
    sampler.start()
    start = time.perf_counter()
    run_sweep(SweepRequest(str(grid), storage=storage, tracking_uri=uri))
    grid_wall = time.perf_counter() - start
    sampler.done.set()
    grid_trials = study_times(storage, "grid")
    best = max(v for _, v, state in grid_trials if state == "COMPLETE")
    grid_seconds = sum(s for s, *_ in grid_trials)
    run_sweep(SweepRequest(str(tpe), storage=storage, tracking_uri=uri))
    spent, reached = 0.0, None
    for seconds, value, state in study_times(storage, "tpe"):
        spent += seconds
        if state == "COMPLETE" and value >= best:
            reached = spent
            break
    busy = (
        (sum(sampler.samples) / 100 / len(sampler.samples), "GPU utilisation (NVML)")
        if sampler.samples
        else (step_time(uri, "grid") / grid_wall, "share of wall time in training steps")
    )
    emit(
        {
            "hardware": machine(),
            "settings": {k: v for k, v in vars(args).items()},
            "grid": {
                "wall_s": round(grid_wall, 1),
                "busy_fraction": round(busy[0], 3),
                "busy_measured_as": busy[1],
                "trial_seconds": [round(s, 1) for s, *_ in grid_trials],
                "best_objective": best,
            },
            "tpe": {
                "trials": [(round(s, 1), v, state) for s, v, state in study_times(storage, "tpe")],
                "seconds_to_grid_best": reached and round(reached, 1),
                "fraction_of_grid_seconds": reached and round(reached / grid_seconds, 3),
                "goal_met": reached is not None and reached / grid_seconds <= 0.5,
            },
        }
    )


if __name__ == "__main__":
    main()
