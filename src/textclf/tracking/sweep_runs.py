"""A sweep's runs: one parent run per study (found again when the study resumes, even when
several machines start it at once) and one child run per trial, edited by id from any worker (no
active run needed)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import mlflow

from textclf.config import Config
from textclf.tracking import queries
from textclf.tracking.liveness import born
from textclf.tracking.provenance import redact


def start_parent(
    experiment: str, run_name: str, tags: dict[str, str], reuse: dict[str, str], heartbeat_s: float
) -> str:
    """The sweep's parent run: the one whose tags match `reuse` (a resumed study), else a new
    one. Sweeps started at once on several machines may each create one; all then keep the
    oldest, and delete theirs."""
    client = mlflow.MlflowClient()
    found = queries.experiment(experiment)
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in reuse.items())
    matching = client.search_runs(
        [found.experiment_id], query, order_by=["attributes.start_time ASC"]
    )
    if not matching:
        mine = client.create_run(
            found.experiment_id, run_name=run_name, tags={**tags, **reuse, **born(heartbeat_s)}
        ).info.run_id
        matching = client.search_runs(
            [found.experiment_id], query, order_by=["attributes.start_time ASC"]
        )
        if matching[0].info.run_id != mine:
            client.delete_run(mine)
    run_id = matching[0].info.run_id
    client.update_run(run_id, status="RUNNING")
    # a reopened parent's old beat is stale
    for key, value in {**tags, **born(heartbeat_s)}.items():
        client.set_tag(run_id, key, value)
    return run_id


def failed_child(
    cfg: Config, parent_run_id: str, params: dict, tags: dict, error: str, name: str
) -> str:
    """A FAILED child run for a trial whose config was rejected before training could start."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    child = client.create_run(
        parent.info.experiment_id,
        run_name=name,
        tags={
            **tags,
            "mlflow.parentRunId": parent_run_id,
            "textclf.error": error[:4000],
            **born(cfg.tracking.heartbeat_s),
        },
    )
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # params as far as they are known
        client.log_batch(
            child.info.run_id,
            params=[
                mlflow.entities.Param(k, redact(k, v)[:6000])
                for k, v in {**cfg.flat(), **params}.items()
            ],
        )
    client.set_terminated(child.info.run_id, "FAILED")
    return child.info.run_id


def fail_if_finished(run_id: str, reason: str) -> bool:
    """A run that ended FINISHED but whose trial then failed (no objective value): FAILED, with the
    reason. Whether it was FINISHED."""
    client = mlflow.MlflowClient()
    if client.get_run(run_id).info.status != "FINISHED":
        return False
    client.set_tag(run_id, "textclf.error", reason[:4000])
    client.set_terminated(run_id, "FAILED")
    return True


def update_run(run_id: str, tags: dict[str, str], files: dict[str, str]) -> None:
    """Tags and small text files on any run by id (a sweep's parent or a trial's child)."""
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    for name, text in files.items():
        client.log_text(run_id, text, name)


def attach_report(run_id: str, directory: Path) -> None:
    mlflow.MlflowClient().log_artifacts(run_id, str(directory), "report")


def delete_run(run_id: str) -> None:
    mlflow.MlflowClient().delete_run(run_id)


def end_run(run_id: str, status: str, tags: dict[str, str] | None = None) -> None:
    client = mlflow.MlflowClient()
    for key, value in (tags or {}).items():
        client.set_tag(run_id, key, value)
    client.set_terminated(run_id, status)
