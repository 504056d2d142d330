"""Reading a run's per-row predictions back (tracking/runs.py logs them): a run, a registered
version or an alias given as the user names it, its evaluation fingerprint, and
predictions/<split>.parquet as a DataFrame."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from textclf.errors import InputError
from textclf.tracking import provenance
from textclf.tracking.runs import PREDICTIONS


@dataclass(frozen=True)
class Scored:
    reference: str  # as the user gave it
    run_id: str
    name: str  # the run's name
    eval_fingerprint: str
    frame: pd.DataFrame  # stats/rows.py predictions_frame
    params: dict[str, str] = field(default_factory=dict)  # the run's config, as logged
    objective: str = ""  # what it was selected by: its sweep's first objective, "" outside a sweep


def run_of(reference: str, what: str):
    """The MLflow run behind a run id, runs:/<id>[/...], models:/NAME/<version> or
    models:/NAME@alias; InputError naming `what` (the argument) otherwise."""
    client = mlflow.MlflowClient()
    found = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", reference)
    try:
        if found:
            name, version, alias = found.groups()
            held = (
                client.get_model_version(name, version)
                if version
                else client.get_model_version_by_alias(name, alias)
            )
            run_id = str(held.tags.get("textclf.run_id") or held.run_id)
        else:
            run_id = re.sub(r"^runs:/([^/]+).*$", r"\1", reference)
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException as e:
        raise InputError(
            [
                f"{what}: {reference!r} is not a run or registered model version here "
                f"({str(e).splitlines()[0][:200]}); give a run id, runs:/<id>, "
                "models:/NAME/<version> or models:/NAME@champion"
            ]
        ) from None
    return run


def scored(reference: str, split: str, what: str) -> Scored:
    """The run behind `reference` with its per-row predictions on `split` (val or test)."""
    run = run_of(reference, what)
    run_id = run.info.run_id
    frame = load(run_id, split)
    if frame is None:
        raise InputError(
            [
                f"{what}: run {run_id} has no per-row predictions "
                f"({PREDICTIONS}/{split}.parquet): it was logged before textclf saved "
                "them, or did not finish; train it again to compare it"
            ]
        )
    return Scored(
        reference,
        run_id,
        run.info.run_name or run_id,
        run.data.tags.get("textclf.eval_fingerprint", ""),
        frame,
        dict(run.data.params),
        _objective_of(run),
    )


def _objective_of(run) -> str:
    """The first objective of the sweep a run is a trial (or seed repeat) of; "" for other runs."""
    parent = run.data.tags.get("mlflow.parentRunId")
    if not parent:
        return ""
    try:
        tags = mlflow.MlflowClient().get_run(parent).data.tags
    except mlflow.exceptions.MlflowException:
        return ""
    return (provenance.objective_of(tags) or ("", ""))[0]


def load(run_id: str, split: str) -> pd.DataFrame | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{PREDICTIONS}/{split}.parquet", dst_path=tmp
            )
        except (mlflow.exceptions.MlflowException, OSError):
            return None
        return pd.read_parquet(Path(path))
