"""Sending metrics to the tracking server: a live run's spool (spool_for: a short timeout, the
journal behind it), and replaying the metric journals of processes that died before the server had
their metrics (journal.py): `textclf sync`, and every textclf train/sweep when it connects to the
same tracking URI."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import mlflow

from textclf import environment
from textclf.tracking.journal import Entry, Journal, Replayed, default_dir, replay
from textclf.tracking.liveness import end_dead
from textclf.tracking.spool import Spool

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
        send_batches(client, run_id, entries)

    def known(run_id: str, keys: set[str]) -> set[tuple[str, int]] | None:
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException as e:
            if e.get_http_status_code() == 404:
                log.warning(
                    "journal of run %s: the tracking server has no such run; dropped", run_id
                )
                return None
            raise
        if run.info.lifecycle_stage == "deleted":
            return None
        return {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}

    def end(run_id: str, intended: str | None, sent: int) -> None:
        reason = (
            f"the process died (killed, or its machine was lost) with {sent} metric values "
            "the tracking server did not have; replayed from its journal by textclf sync"
        )
        if intended in ("KILLED", "FINISHED"):
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, intended)
        else:
            end_dead(run_id, reason if intended is None else f"{reason} (it had failed)")

    return replay(directory, uri, send, known, end)


def send_batches(client: mlflow.MlflowClient, run_id: str, entries: list[Entry]) -> None:
    metrics = [
        mlflow.entities.Metric(key, value, timestamp, step)
        for key, value, step, timestamp in entries
    ]
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH])


def spool_for(run_id: str, journal: Journal) -> Spool:
    """The live run's spool (spool.py): sends with a short timeout, the journal behind it."""

    def send(entries):
        with _fail_fast():
            send_batches(mlflow.MlflowClient(), run_id, entries)

    def known(keys):
        with _fail_fast():
            client = mlflow.MlflowClient()
            return {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}

    return Spool(
        send,
        known,
        pending=list(journal.leftover),
        uncertain=bool(journal.leftover),
        journal=journal,
    )


@contextlib.contextmanager
def _fail_fast(timeout_s: int = 1) -> Iterator[None]:
    """One attempt with a short timeout for HTTP stores (MLflow reads these per request); the spool
    retries. Process-wide environment variables: only the main thread may use this."""
    once = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    with environment.setting(once):
        yield
