"""Reading runs back: a sweep's parent, its children or an experiment's runs as pandas DataFrames
(MLflow's own column names: run_id, status, params.*, metrics.*, tags.*), metric histories, seed
repeats."""

from __future__ import annotations

import re

import mlflow
import pandas as pd


def sweep_parent(target: str) -> tuple[str, str, dict[str, str]] | None:
    """(run id, experiment id, tags) of a run given by id, or of a study name's newest parent."""
    client = mlflow.MlflowClient()
    if re.fullmatch(r"[0-9a-f]{32}", target):
        try:
            run = client.get_run(target)
        except mlflow.exceptions.MlflowException:
            return None
    else:
        found = mlflow.search_runs(
            search_all_experiments=True,
            output_format="list",
            max_results=1,
            filter_string=f"tags.`textclf.study` = '{target}' and tags.`textclf.role` = 'sweep'",
            order_by=["attributes.start_time DESC"],
        )
        if not found:
            return None
        run = found[0]
    return run.info.run_id, run.info.experiment_id, dict(run.data.tags)


def children(parent_run_id: str, experiment_id: str) -> pd.DataFrame:
    return mlflow.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")


def experiment(name: str) -> mlflow.entities.Experiment:
    """The experiment `name`, which store.connect made or found before any run starts."""
    found = mlflow.MlflowClient().get_experiment_by_name(name)
    if found is None:
        raise LookupError(f"no MLflow experiment named {name!r} at {mlflow.get_tracking_uri()}")
    return found


def experiment_runs(name: str) -> pd.DataFrame | None:
    """The runs of an experiment other than sweep parents; None when there is no such experiment."""
    found = mlflow.MlflowClient().get_experiment_by_name(name)
    if found is None:
        return None
    # Filtered here, not in MLflow: its `!=` filter also drops the runs without the tag (every train
    # run).
    runs = mlflow.search_runs([found.experiment_id])
    if not runs.empty and "tags.textclf.role" in runs:
        runs = runs[runs["tags.textclf.role"] != "sweep"]
    return runs


def metric_history(run_id: str, key: str) -> dict[int, float]:
    """step -> value of one metric of one run."""
    return {m.step: m.value for m in mlflow.MlflowClient().get_metric_history(run_id, key)}


def repeats_of(parent_run_id: str) -> set[tuple[str, str]]:
    """(trial number, train.seed) of the seed-repeat runs already logged under a parent."""
    client = mlflow.MlflowClient()
    experiment = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs(
        [experiment],
        f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.`textclf.repeat_of` != ''",
    )
    return {
        (r.data.tags["textclf.repeat_of"], r.data.params.get("train.seed", ""))
        for r in runs
        if r.info.status == "FINISHED"
    }


def experiment_of(run_id: str) -> str:
    client = mlflow.MlflowClient()
    return client.get_experiment(client.get_run(run_id).info.experiment_id).name


def current_uri() -> str:
    return mlflow.get_tracking_uri()
