"""The jobs that train, search, report, compare and predict: what `textclf train`, `sweep`,
`report`, `compare` and `predict` run, and what a notebook calls as `textclf.train` and so on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from textclf.config import Config, flatten_tree, load_config, replace
from textclf.errors import InputError
from textclf.studies.request import SweepRequest

if TYPE_CHECKING:
    from textclf.reporting.build import Report


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    # the final metrics the run logged (training/summary.py FINAL_METRICS)
    metrics: dict[str, float]
    history: pd.DataFrame  # one row per epoch: train/val loss and accuracy, loss ratio, epoch time
    model_uri: str | None  # runs:/... or models:/...; None when no model was logged
    tracking_uri: str

    def scores(self) -> list[tuple[str, str]]:
        """What `textclf train` prints: (name, `0.8412 [0.81, 0.8702]`), each score with its 95%
        interval over the evaluation rows where it has one."""
        from textclf.stats.intervals import with_interval
        from textclf.training.summary import PRINTED_METRICS

        return [(key, with_interval(self.metrics, key)) for key in PRINTED_METRICS]


def train(
    config: str | Path | Mapping | Config | None = None,
    overrides: Sequence[str] = (),
    *,
    train=None,
    val=None,
    test=None,
    tracking_uri: str | None = None,
    resume: str | None = None,
) -> TrainResult:
    """One fine-tuning run. `config`: a YAML file, a {section: {key: value}} tree (deltas on the
    defaults) or a loaded Config; `overrides`: `section.key=value` strings. `train`/`val`/`test`:
    pandas DataFrames or datasets.Datasets with the configured text and label columns, instead of
    data.name: train alone is split by data.split (pool unless set otherwise), train + test carve
    validation from train (provided), all three are used as given. `resume`: a run id to continue
    from its last checkpoint."""
    from textclf.run import train_run
    from textclf.tracking import store

    cfg = _config(config, overrides)
    cfg, source = _in_memory(cfg, {"train": train, "val": val, "test": test})
    uri, origin = store.resolve_uri(tracking_uri, cfg.tracking.uri, cfg.where("tracking.uri"))
    store.check_uri(uri, origin, wait_s=store.startup_wait(cfg.tracking.outage_wait_s))
    result = train_run(cfg, uri, resume=resume, source=source)
    history = pd.DataFrame(
        result.history, index=pd.RangeIndex(1, len(result.history) + 1, name="epoch")
    )
    return TrainResult(result.run_id, result.metrics, history, result.model_uri, uri)


def _in_memory(cfg: Config, frames: dict):
    """The config and data source for data given in memory (None: the config's data.name)."""
    from textclf.data.readers import from_frames

    given = {k: v for k, v in frames.items() if v is not None}
    if not given:
        return cfg, None
    if "train" not in given or set(given) == {"train", "val"}:
        raise InputError(
            ["textclf.train: give train=, train= and test=, or all of train=, val= and test="]
        )
    mode = {
        1: "pool" if cfg.data.split == "provided" else cfg.data.split,
        2: "provided",
        3: "given",
    }
    cfg = replace(
        cfg,
        data__name="dataframes",
        data__split=mode[len(given)],
        data__train_split="train",
        data__val_split="val",
        data__test_split="test",
    )
    return cfg, from_frames(given)


def sweep(
    spec: str | Path | SweepRequest, overrides: Sequence[str] = (), **options
) -> pd.DataFrame:
    """Run (or resume) the study a sweep file declares: `spec` is the file (with `overrides` and the
    request's other fields as keywords: n_trials, workers, storage, tracking_uri, register_as, gpus,
    devices_per_trial, repeat_best, seeds) or a whole SweepRequest, as `textclf sweep` builds it.
    Returns the per-trial table (the parent's trials.csv): state, objective value(s), the values
    the sweep varied, headline metrics, the MLflow run of each trial; its attrs["summary"] is what
    `textclf sweep` prints (both empty in a worker process)."""
    from textclf.studies.sweep import run_sweep

    if not isinstance(spec, SweepRequest):
        spec = SweepRequest(str(spec), tuple(overrides), **options)
    elif overrides or options:
        raise InputError(["textclf.sweep: give a SweepRequest alone, or a file with options"])
    outcome = run_sweep(spec)
    outcome.table.attrs["summary"] = outcome.summary
    return outcome.table


def write_report(
    target: str,
    *,
    tracking_uri: str | None = None,
    storage: str | None = None,
    output: str | None = None,
    attach: bool = True,
) -> Report:
    """`textclf report`: the report of a study name, a sweep's parent run id or an experiment,
    written to reports/<name>/ and attached to the parent run. Returns the report's path, its
    leaderboard and the data-scaling readings."""
    from textclf.reporting.build import make_report
    from textclf.reporting.tables import select_runs
    from textclf.studies.views import load_study_of, optuna_views
    from textclf.tracking import store

    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"report: {origin}")
    selection = select_runs(target)
    views = optuna_views(load_study_of(selection.study_name, storage or selection.storage))
    return make_report(target, selection, views, output, attach)


def report(
    target: str,
    *,
    tracking_uri: str | None = None,
    storage: str | None = None,
    output: str | None = None,
    attach: bool = True,
) -> pd.DataFrame:
    """The report of a study name, a sweep's parent run id or an experiment, written to
    reports/<name>/ and attached to the parent run as `textclf report` does; returns the
    leaderboard as a DataFrame."""
    return write_report(
        target, tracking_uri=tracking_uri, storage=storage, output=output, attach=attach
    ).table


def compare(
    a: str,
    b: str,
    *,
    split: str = "val",
    metric: str | None = None,
    tracking_uri: str | None = None,
) -> dict:
    """`textclf compare`: B against A on the same rows, B - A with 95% intervals and p-values for
    accuracy, F1 and per-row loss. A and B are each one run (ids, runs:/..., models:/NAME/<version>,
    models:/NAME@champion: are these two trained models different?) or a comma-separated list of
    runs of one configuration with different train.seed (is configuration B better?). The metric of
    the runs' objective decides (`metric` overrides); the others are secondary, Holm-adjusted. The
    result's "verdict" holds kind (models or configurations), better (a, b or None), metric and
    p_value. InputError when the runs were scored on different rows."""
    from textclf.reporting.compare import METRICS
    from textclf.reporting.compare import compare as paired_compare
    from textclf.tracking import store

    problems = [f"split: {split!r} is not one of val, test"] * (split not in ("val", "test"))
    problems += [f"metric: {metric!r} is not one of {', '.join(METRICS)}"] * (
        metric is not None and metric not in METRICS
    )
    if problems:
        raise InputError(problems)
    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"compare: {origin}")
    return paired_compare(a, b, split, metric=metric)


def predict(
    model_uri: str,
    texts: Sequence[str],
    *,
    tracking_uri: str | None = None,
    input_file: str | None = None,
) -> list[dict]:
    """Classify `texts` (and the non-empty lines of the UTF-8 `input_file`, '-': stdin) with a
    logged model (runs:/<id>/model, models:/..., or a directory in textclf's saved form): one
    {text, label, score, probabilities} per text (`textclf predict`); under `mlflow run` they are
    kept in its run as predictions.jsonl."""
    import json

    from textclf.predict import load_predictor, read_texts
    from textclf.tracking import store

    texts = read_texts(tuple(texts), input_file)
    uri, origin = store.resolve_uri(tracking_uri)
    rows = load_predictor(model_uri, uri, origin).predict(texts)
    store.attach_to_mlflow_run(
        "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows), uri
    )
    return rows


def _config(config: str | Path | Mapping | Config | None, overrides: Sequence[str]) -> Config:
    if isinstance(config, Config):
        if overrides:
            raise InputError(
                [
                    "textclf.train: overrides apply to a YAML file or a tree; change a "
                    "loaded Config with textclf.config.replace"
                ]
            )
        return config
    if isinstance(config, Mapping):
        problems: list[str] = []
        delta = flatten_tree(dict(config), "config", problems)
        if problems:
            raise InputError(problems)
        return load_config(None, list(overrides), [("config", delta)])
    return load_config(config, list(overrides))
