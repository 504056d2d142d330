"""textclf from a notebook: `textclf.train`, `textclf.sweep` and `textclf.report` do what the commands do (the
same validation, splits, fingerprints, MLflow runs and artifacts) and return small results and DataFrames
instead of printing. Bad input raises InputError (its `.problems` are the lines the CLI would print);
Ctrl-C (KeyboardInterrupt) ends the run KILLED, as in the CLI.

    import textclf
    result = textclf.train("configs/quickstart.yaml", ["train.epochs=1"], train=frame)   # frame: text, label
    result.metrics["test_accuracy"], result.history, result.model_uri
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from textclf.config import Config, flatten_tree, load_config, replace
from textclf.errors import InputError


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    metrics: dict[str, float]  # the final metrics the run logged (training/metrics.py FINAL_METRICS)
    history: pd.DataFrame  # one row per epoch: train/val loss and accuracy, loss ratio, epoch time
    model_uri: str | None  # runs:/... or models:/...; None when no model was logged
    tracking_uri: str


def train(config: str | Path | Mapping | None = None, overrides: Sequence[str] = (), *, train=None, val=None,
          test=None, tracking_uri: str | None = None) -> TrainResult:
    """One fine-tuning run. `config`: a YAML file or a {section: {key: value}} tree (deltas on the defaults);
    `overrides`: `section.key=value` strings. `train`/`val`/`test`: pandas DataFrames or datasets.Datasets with
    the configured text and label columns, instead of data.name: train alone is split by data.split (pool
    unless set otherwise), train + test carve validation from train (provided), all three are used as given."""
    from textclf.data.sources import from_frames
    from textclf.run import train_run
    from textclf.tracking import store

    cfg = _config(config, overrides)
    given = {k: v for k, v in {"train": train, "val": val, "test": test}.items() if v is not None}
    source = None
    if given:
        if "train" not in given or set(given) == {"train", "val"}:
            raise InputError(["textclf.train: give train=, train= and test=, or all of train=, val= and test="])
        mode = {1: "pool" if cfg.data.split == "provided" else cfg.data.split, 2: "provided", 3: "given"}
        cfg = replace(cfg, data__name="dataframes", data__split=mode[len(given)], data__train_split="train",
                      data__val_split="val", data__test_split="test")
        source = from_frames(given)
    uri, origin = store.resolve_uri(tracking_uri, cfg)
    store.check_uri(uri, origin, wait_s=cfg.tracking.outage_wait_s)
    result = train_run(cfg, uri, source=source)
    return TrainResult(result.run_id, result.metrics, pd.DataFrame(result.history, index=pd.RangeIndex(
        1, len(result.history) + 1, name="epoch")), result.model_uri, uri)


def sweep(spec: str | Path, overrides: Sequence[str] = (), *, n_trials: int | None = None, workers: int | str = 1,
          storage: str | None = None, tracking_uri: str | None = None, register_as: str | None = None) -> pd.DataFrame:
    """Run (or resume) the study a sweep file declares; returns its per-trial table (the parent's trials.csv):
    state, objective value(s), the values the sweep varied, headline metrics, the MLflow run of each trial."""
    from textclf.studies.driver import run_sweep
    from textclf.studies.load import load_spec
    from textclf.studies.study import open_study, storage_url, trial_table

    extra = (*overrides, *([f"tracking.register_as={register_as}"] if register_as else []))
    run_sweep(str(spec), overrides=extra, n_trials=n_trials, workers=str(workers), storage=storage,
              tracking_uri=tracking_uri)
    loaded = load_spec(spec, extra)
    return trial_table(open_study(loaded, storage_url(loaded, storage)))


def report(target: str, *, tracking_uri: str | None = None, storage: str | None = None, output: str | None = None,
           attach: bool = True) -> pd.DataFrame:
    """The report of a study name, a sweep's parent run id or an experiment (written to reports/<name>/ and
    attached to the parent run, as `textclf report`); returns its leaderboard."""
    from textclf.reporting.build import make_report
    from textclf.tracking import store

    uri, origin = store.resolve_uri(tracking_uri, Config())
    store.connect_read(uri, f"report: {origin}")
    return make_report(target, storage, output, attach).table


def compare(a: str, b: str, *, split: str = "test", tracking_uri: str | None = None) -> dict:
    """Two runs (ids, runs:/..., models:/NAME/<version>, models:/NAME@champion) scored on the same rows, compared
    row by row: accuracy, F1 and per-row loss as B - A with 95% intervals and p-values (`textclf compare`).
    InputError when they were scored on different rows."""
    from textclf.reporting.compare import compare as paired_compare
    from textclf.tracking import store

    if split not in ("val", "test"):
        raise InputError([f"split: {split!r} is not one of val, test"])
    uri, origin = store.resolve_uri(tracking_uri, Config())
    store.connect_read(uri, f"compare: {origin}")
    return paired_compare(a, b, split)


def _config(config: str | Path | Mapping | None, overrides: Sequence[str]) -> Config:
    if isinstance(config, Mapping):
        problems: list[str] = []
        delta = flatten_tree(dict(config), "config", problems)
        if problems:
            raise InputError(problems)
        return load_config(None, list(overrides), [("config", delta)])
    return load_config(config, list(overrides))
