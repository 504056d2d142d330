"""Replaying the metric journals of processes that died before the tracking server had their metrics
(journal.py): `textclf sync`, and every textclf train/sweep when it connects to the same tracking
URI."""
from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from textclf.tracking.journal import Entry, Replayed, default_dir, replay
from textclf.tracking.liveness import end_dead

log = logging.getLogger(__name__)
BATCH = 1000  # MLflow's limit of metrics per log_batch call


def journal_dir(configured: str | None) -> Path:
    return Path(configured) if configured else default_dir()


def sync(uri: str, directory: Path) -> list[Replayed]:
    """Send each dead process's unsent values to the run (each (key, step) once) and end the run as
    the reaper would (FAILED, or the status the process meant: KILLED after Ctrl-C); the tracking
    URI is set."""
    client = mlflow.MlflowClient(uri)

    def send(run_id: str, entries: list[Entry]) -> None:
        metrics = [mlflow.entities.Metric(key, value, timestamp, step) for key, value, step,
                   timestamp in entries]
        for start in range(0, len(metrics), BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + BATCH])

    def known(run_id: str, keys: set[str]) -> set[tuple[str, int]] | None:
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException as e:
            if e.get_http_status_code() == 404:
                log.warning("journal of run %s: the tracking server has no such run; dropped",
                            run_id)
                return None
            raise
        if run.info.lifecycle_stage == "deleted":
            return None
        return {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}

    def end(run_id: str, intended: str | None, sent: int) -> None:
        reason = (f"the process died (killed, or its machine was lost) with {sent} metric values "
                  "the tracking server did not have; replayed from its journal by textclf sync")
        if intended in ("KILLED", "FINISHED"):
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, intended)
        else:
            end_dead(run_id, reason if intended is None else f"{reason} (it had failed)")

    return replay(directory, uri, send, known, end)
