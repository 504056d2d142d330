"""One MLflow run being logged: it always ends (FINISHED, KILLED on Ctrl-C/SIGTERM or a pruned
trial, FAILED with the error as a tag), and an ActiveRun object logs into it: params, the resolved
config, dataset inputs, per-epoch metrics through a spool (training goes on while the tracking
server is away), final results."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import mlflow

from textclf.config import TrackingConfig
from textclf.errors import InputError
from textclf.tracking import names, queries
from textclf.tracking.active import EPOCH_KEYS, PREDICTIONS, ActiveRun
from textclf.tracking.journal import Journal, check_dir
from textclf.tracking.liveness import born, clear_reaped, heartbeat
from textclf.tracking.spool import Spool
from textclf.tracking.sync import journal_dir, spool_for

__all__ = ["EPOCH_KEYS", "PREDICTIONS", "ActiveRun", "active_run_id", "check_journal_dir", "run"]


@contextlib.contextmanager
def run(
    tracking: TrackingConfig,
    tags: dict[str, str],
    parent_run_id: str | None = None,
    killed_by: tuple[type[BaseException], ...] = (),
    resume: str | None = None,
    name: str | None = None,
    unique: bool = True,
) -> Iterator[ActiveRun]:
    """An MLflow run that always ends: FINISHED, KILLED on Ctrl-C/SIGTERM or a `killed_by` exception
    (a pruned trial), FAILED (with the error as a tag). With a parent it is that run's child.
    `resume`: the id of an earlier run to continue (it is RUNNING again; epochs it already has are
    not logged twice). `name` (default tracking.run_name) gets a ` #2`, ` #3` ... when `unique`
    and the experiment has it."""
    active = _start(tracking, tags, parent_run_id, resume, name or tracking.run_name, unique)
    journal = Journal(
        journal_dir(tracking.journal_dir), mlflow.get_tracking_uri(), active.info.run_id
    )
    logged = ActiveRun(active.info.run_id, spool_for(active.info.run_id, journal))
    status = "FAILED"
    # the killed process may have logged epochs after its last checkpoint
    logged.spool.uncertain = bool(resume)
    beat = heartbeat(active.info.run_id, tracking.heartbeat_s)
    stops: tuple[type[BaseException], ...] = (KeyboardInterrupt, *killed_by)
    try:
        yield logged
        status = "FINISHED"
    except stops:
        status = "KILLED"
        raise
    except BaseException as e:
        with contextlib.suppress(Exception):  # the error may be the tracking server itself
            mlflow.set_tag("textclf.error", f"{type(e).__name__}: {e}"[:4000])
        raise
    finally:
        try:
            if status != "FINISHED":  # what the epochs logged is kept, if the server answers soon
                with contextlib.suppress(TimeoutError):
                    logged.spool.drain(min(tracking.outage_wait_s, 30.0))
        finally:
            beat.set()
            _end(active.info.run_id, status, logged.spool, journal)


def _start(
    tracking: TrackingConfig,
    tags: dict[str, str],
    parent_run_id: str | None,
    resume: str | None,
    name: str | None,
    unique: bool,
):
    """The MLflow run started (or, for `resume`, started again), with a heartbeat tag and
    MLflow's system metrics."""
    if name and unique and not resume:
        # store.connect selected it
        experiment = (
            os.environ.get("MLFLOW_EXPERIMENT_ID")
            or queries.experiment(tracking.experiment).experiment_id
        )
        name = names.unique_name(name, experiment)
    if tracking.system_metrics:  # MLflow's sampler thread: CPU, memory, disk, network, GPU
        mlflow.set_system_metrics_sampling_interval(tracking.system_metrics_interval_s)
        mlflow.set_system_metrics_samples_before_logging(1)
    beating = born(tracking.heartbeat_s)
    outer = mlflow.active_run()  # a notebook's run, or the caller's: ours becomes its child
    if resume:
        active = mlflow.start_run(
            run_id=resume, nested=outer is not None, log_system_metrics=tracking.system_metrics
        )
        mlflow.set_tags(beating)  # its old beat is stale: not reaped while it resumes
        clear_reaped(active)
    elif outer is None or parent_run_id in (None, outer.info.run_id):
        parent = parent_run_id or (outer.info.run_id if outer else None)
        active = mlflow.start_run(
            run_name=name,
            tags={**tags, **beating},
            nested=outer is not None,
            parent_run_id=parent,
            log_system_metrics=tracking.system_metrics,
        )
    else:  # a sweep's trial inside someone's active run: MLflow nests under it; re-parent it
        active = mlflow.start_run(
            run_name=name,
            tags={**tags, **beating},
            nested=True,
            log_system_metrics=tracking.system_metrics,
        )
        mlflow.set_tag("mlflow.parentRunId", parent_run_id)
    return active


def _end(run_id: str, status: str, spool: Spool, journal: Journal) -> None:
    """End the run; values the server never confirmed stay in the journal, with the status meant,
    for `textclf sync` (the journal goes only when nothing is pending)."""
    if spool.pending:
        journal.ending(status)
    if journal.broken:  # said on the run: its metrics were not kept safe through an outage
        with contextlib.suppress(Exception):
            mlflow.set_tag("textclf.journal", f"off: {journal.broken}"[:5000])
    try:
        # reaped by mistake while the server was away: it is alive after all
        if status == "FINISHED":
            with contextlib.suppress(Exception):
                clear_reaped(mlflow.get_run(run_id))
        mlflow.end_run(status)
    finally:
        journal.close(remove=not spool.pending)


def check_journal_dir(tracking: TrackingConfig) -> None:
    """Before the run exists: runs keep unsent metrics there (journal.py)."""
    problem = check_dir(journal_dir(tracking.journal_dir))
    if problem:
        raise InputError(
            [f"{tracking.where('tracking.journal_dir')}: tracking.journal_dir: {problem}"]
        )


def active_run_id() -> str:
    """The id of the MLflow run this process has open."""
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("no MLflow run is active")
    return active.info.run_id


def settle(tracking_uri: str, run_id: str, status: str, why: str) -> None:
    """End a run that its own process could not end as it should (a rank of several was killed):
    `status`, unless it FINISHED; FAILED replaces the KILLED that a rank stopped by the launcher
    may have set. A failure's `why` (which rank ended how) leads the error tag: rank 0's own
    error, when it wrote one, is often only the symptom (a peer that closed its connection)."""
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    if run.info.status == "FINISHED":
        return
    if status == "FAILED":
        said = run.data.tags.get("textclf.error")
        client.set_tag(run_id, "textclf.error", (f"{why} (rank 0: {said})" if said else why)[:4000])
    if run.info.status != status:
        client.set_terminated(run_id, status)
