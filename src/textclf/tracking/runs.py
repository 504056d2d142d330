"""One MLflow run being logged: it always ends (FINISHED, KILLED on Ctrl-C/SIGTERM or a pruned
trial, FAILED with the error as a tag), and an ActiveRun object logs into it: params, the resolved
config, dataset inputs, per-epoch metrics through a spool (training goes on while the tracking
server is away), final results."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from textclf.config import Config, TrackingConfig, dump_yaml
from textclf.errors import InputError
from textclf.tracking import models, names
from textclf.tracking.journal import Journal, check_dir
from textclf.tracking.liveness import born, clear_reaped, heartbeat
from textclf.tracking.provenance import redact
from textclf.tracking.spool import Spool
from textclf.tracking.sync import journal_dir, spool_for

PREDICTIONS = "predictions"  # the artifact folder of per-row predictions
EPOCH_KEYS = {"train_val_loss_ratio": "epoch_train_val_loss_ratio"}


class ActiveRun:
    """The run being logged to, with its metric spool."""

    def __init__(self, run_id: str, spool: Spool):
        self.run_id, self.spool = run_id, spool

    def log_setup(
        self,
        cfg: Config,
        frames: dict[str, pd.DataFrame],
        data_uri: str,
        varied: dict[str, Any],
        digests: dict[str, str] | None = None,
    ) -> None:
        """Params (the config, flat and namespaced, and what a trial `varied`), the resolved
        config, and the splits as dataset inputs whose digests are textclf's fingerprints of each
        split's full rows (`digests`): the runs table's Dataset column then shows which runs were
        trained and scored on the same rows."""
        params = {**cfg.flat(), **varied, **models.inference_config(cfg.data.max_length)}
        mlflow.log_params({k: redact(k, v) for k, v in params.items()})
        mlflow.log_text(dump_yaml(cfg), "config.yaml")
        # MLflow guesses a source type for plain paths and warns about it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for split, frame in frames.items():
                dataset = mlflow.data.from_pandas(
                    frame,
                    source=data_uri,
                    targets="label",
                    name=f"{cfg.data.name}:{split}",
                    digest=(digests or {}).get(split),
                )
                _log_input(dataset, split)

    def log_derived(self, metrics: dict[str, float], tags: dict[str, str]) -> None:
        """What the data and model turned out to be (summary.derived_values)."""
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)

    def log_trainable(self, names: list[str]) -> None:
        """The tensors that train, one name per line: what a freeze preset or peft method chose."""
        mlflow.log_text("\n".join(names) + "\n", "trainable_parameters.txt")

    def log_samples(self, text: str) -> None:
        """A few training inputs decoded, to check the tokenization (run.py training_samples)."""
        mlflow.log_text(text, "samples.txt")

    def log_steps(self, key: str, values: list[float]) -> None:
        """A per-step series (steps 1, 2, ...) through the spool; in a resumed run the spool asks
        the server which steps it has first (run: `uncertain`), so none is logged twice."""
        self.spool.add_steps(key, values)
        self.spool.flush()

    def log_epoch(self, metrics: dict[str, float], epoch: int) -> None:
        """Through the spool: training goes on while the tracking server is away (spool.py)."""
        # the final `train_val_loss_ratio` is the best epoch's; the per-epoch series needs its own
        # key, or MLflow's "latest value" (highest step) would show the last epoch's ratio under the
        # final name
        self.spool.add({EPOCH_KEYS.get(k, k): v for k, v in metrics.items()}, epoch)
        self.spool.flush()

    def drain(self, wait_s: float) -> dict[str, float]:
        """Send what the spool holds (waiting up to `wait_s` for the server); how logging fared in
        training."""
        self.spool.drain(wait_s)
        return {
            "tracking_longest_wait_s": self.spool.longest_wait_s,
            "tracking_failed_sends": self.spool.failures,
        }

    def tag(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_results(
        self, final: dict[str, float], confusion: dict, figures: dict[str, object]
    ) -> None:
        mlflow.log_metrics(final)
        mlflow.log_dict(confusion, "confusion_matrix.json")
        if figures:  # matplotlib only when there are figures (tracking.log_figures)
            import matplotlib.pyplot as plt

            for name, figure in figures.items():
                mlflow.log_figure(figure, name)
                plt.close(figure)

    def log_predictions(
        self, frames: dict[str, pd.DataFrame], errors: dict[str, pd.DataFrame]
    ) -> None:
        """predictions/<split>.parquet, every evaluated row (what `textclf compare` and champion
        promotion pair up), and misclassified_<split>.json, the most confident errors as an MLflow
        table (the UI shows it)."""
        with tempfile.TemporaryDirectory() as tmp:
            for split, frame in frames.items():
                frame.to_parquet(Path(tmp) / f"{split}.parquet", index=False)
            mlflow.log_artifacts(tmp, PREDICTIONS)
        for split, table in errors.items():
            mlflow.log_table(table, artifact_file=f"misclassified_{split}.json")


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
    try:
        yield logged
        status = "FINISHED"
    except (KeyboardInterrupt, *killed_by):
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
    """The MLflow run started (or, for `resume`, started again), with a heartbeat tag and MLflow's
    system metrics."""
    if name and unique and not resume:
        experiment = (
            os.environ.get("MLFLOW_EXPERIMENT_ID")
            or mlflow.get_experiment_by_name(tracking.experiment).experiment_id
        )  # store.connect selected it
        name = names.unique_name(name, experiment)
    if tracking.system_metrics:  # MLflow's sampler thread: CPU, memory, disk, network, GPU
        mlflow.set_system_metrics_sampling_interval(tracking.system_metrics_interval_s)
        mlflow.set_system_metrics_samples_before_logging(1)
    system = {"log_system_metrics": tracking.system_metrics}
    beating = born(tracking.heartbeat_s)
    outer = mlflow.active_run()  # a notebook's run, or the caller's: ours becomes its child
    if resume:
        active = mlflow.start_run(run_id=resume, nested=outer is not None, **system)
        mlflow.set_tags(beating)  # its old beat is stale: not reaped while it resumes
        clear_reaped(active)
    elif outer is None or parent_run_id in (None, outer.info.run_id):
        parent = parent_run_id or (outer.info.run_id if outer else None)
        active = mlflow.start_run(
            run_name=name,
            tags={**tags, **beating},
            nested=outer is not None,
            parent_run_id=parent,
            **system,
        )
    else:  # a sweep's trial inside someone's active run: MLflow nests under it; re-parent it
        active = mlflow.start_run(run_name=name, tags={**tags, **beating}, nested=True, **system)
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
    return mlflow.active_run().info.run_id


def _log_input(dataset, context: str, attempts: int = 3) -> None:
    """Workers of one sweep log the same dataset at once: MLflow's store inserts it after checking
    that it is not there, and the slower insert fails on the unique key. The dataset then exists:
    link to it again."""
    for attempt in range(attempts):
        try:
            return mlflow.log_input(dataset, context=context)
        except mlflow.exceptions.MlflowException as e:
            if attempt == attempts - 1 or not re.search(
                r"UNIQUE constraint|IntegrityError|duplicate key", str(e)
            ):
                raise
            time.sleep(0.2 * (attempt + 1))
