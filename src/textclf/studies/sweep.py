"""`textclf sweep`: an Optuna study as one MLflow parent run with one child run per trial.

Everything is validated before anything exists; then the study lives in an Optuna storage (default:
the embedded SQLite file optuna.db), so rerunning the same command resumes it, and `--workers K`
processes (or machines sharing a database) work on one study. The report is attached to the parent
when the sweep ends.
"""

from __future__ import annotations

import json
import logging
import os

import optuna

from textclf.errors import SweepStopped
from textclf.studies import best_models
from textclf.studies import workers as spread
from textclf.studies.objective import objective
from textclf.studies.plan import Plan, check_command, validate
from textclf.studies.records import Sweep, record_trial, stop_after_failures
from textclf.studies.repeats import repeat_top
from textclf.studies.report import finish, summary_text
from textclf.studies.request import SweepOutcome, SweepRequest
from textclf.studies.storage import open_study
from textclf.studies.strategies import strategy
from textclf.studies.study import EVAL, finished_count, trial_table
from textclf.tracking import liveness, provenance, queries, store, sweep_runs
from textclf.training.device import physical_cores

log = logging.getLogger(__name__)


def run_worker(sweep: Sweep) -> None:
    """Run trials until the study has its target number of finished trials (or the grid is done)."""
    callbacks = [lambda s, t: record_trial(sweep, s, t), stop_after_failures(sweep.spec)]

    def optimize(
        study: optuna.Study, n_trials: int | None, timeout: float | None, more: list
    ) -> None:
        _optimize(sweep, study, n_trials, timeout, callbacks + more)

    strategy(sweep.spec).run(
        open_study(sweep.spec, sweep.storage_url, sweep.worker), optimize, finished_count
    )


def _optimize(
    sweep: Sweep, study: optuna.Study, n_trials: int | None, timeout: float | None, callbacks
) -> None:
    while True:
        try:
            study.optimize(
                lambda trial: objective(sweep, trial),
                n_trials=n_trials,
                timeout=timeout,
                callbacks=callbacks,
                catch=(Exception,),
                gc_after_trial=True,
            )
            return
        # this worker goes on with the next trial
        except optuna.exceptions.UpdateFinishedTrialError as e:
            log.warning(
                "another worker failed a trial of this one as stale while it still ran "
                "(its heartbeat came late; raise study.heartbeat_s on a loaded machine): "
                "%s",
                e,
            )
            if n_trials is not None:
                return


def run_sweep(request: SweepRequest) -> SweepOutcome:
    """The `textclf sweep` command: validate, open the study and its parent run, run the workers;
    returns the trial table and the summary to print (both empty for a worker process)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial comes from record_trial
    overrides = request.config_overrides()
    plan = validate(
        request.spec,
        overrides,
        request.n_trials,
        request.storage,
        request.tracking_uri,
        worker=bool(request.worker_of),
    )
    check_command(plan, request.spec, request.repeat_best)
    environments = worker_environments(request)  # checked before anything exists, too
    # `mlflow run`: its run is the parent
    launched_by_mlflow = os.environ.pop("MLFLOW_RUN_ID", None)
    store.connect(plan.tracking_uri, plan.base.tracking.experiment, plan.base.tracking.journal_dir)
    parent = request.worker_of or open_parent(plan, launched_by_mlflow)
    sweep = Sweep(
        plan.spec,
        plan.storage_url,
        plan.tracking_uri,
        parent,
        queries.experiment_of(parent),
        overrides,
        request.worker_index,
    )
    if request.worker_of:
        run_worker(sweep)
        return SweepOutcome()
    study = run_command(sweep, plan, request, environments, launched_by_mlflow)
    table = trial_table(study)
    return SweepOutcome(
        table, summary_text(study, plan.storage_url, parent, plan.tracking_uri, table)
    )


def worker_environments(request: SweepRequest) -> list[dict[str, str]] | None:
    """The worker processes' environments (workers.py), or None when this process is the worker."""
    if request.worker_of or (str(request.workers) == "1" and not request.gpus):
        return None
    return spread.plan(
        str(request.workers),
        request.gpus,
        spread.visible_gpus(),
        physical_cores(),
        request.devices_per_trial,
    )


def run_command(
    sweep: Sweep,
    plan: Plan,
    request: SweepRequest,
    environments: list[dict[str, str]] | None,
    launched_by_mlflow: str | None,
) -> optuna.Study:
    """The trials, the seed repeats and the registration under the parent run, which ends FINISHED,
    KILLED (Ctrl-C, SIGTERM) or FAILED; returns the study as the parent's final report read it."""
    beat = liveness.heartbeat(sweep.parent_run_id, plan.base.tracking.heartbeat_s)
    status = "FAILED"
    try:
        run_workers(sweep, request.spec, environments)
        if request.repeat_best:
            repeat_top(
                sweep, open_study(plan.spec, plan.storage_url), request.repeat_best, request.seeds
            )
        if plan.base.tracking.register_as:
            register(plan, plan.base.tracking.register_as, sweep.parent_run_id)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        beat.set()
        try:
            study = finish(plan.spec, plan.storage_url, sweep.parent_run_id)
        except KeyboardInterrupt:  # Ctrl-C during the final report still ends the sweep KILLED
            status = "KILLED"
            raise
        finally:
            if not launched_by_mlflow:  # else `mlflow run` ends its own run
                sweep_runs.end_run(sweep.parent_run_id, status)
    return study


def register(plan: Plan, name: str, parent: str) -> None:
    """The best trial's model as a version of `name` in the Model Registry (best_models.py), said
    on the parent run too."""
    said = best_models.register_best(
        plan.spec, open_study(plan.spec, plan.storage_url), name, plan.base.tracking
    )
    if said:
        log.info("%s", said)
        sweep_runs.update_run(parent, {"textclf.registered": said}, {})


def open_parent(plan: Plan, launched_by_mlflow: str | None) -> str:
    """The study (created once, before any worker races to create it; a grid's points enqueued)
    and its parent run: the one `mlflow run` made, the one of this study from an earlier command,
    or a new one."""
    spec, url, splits = plan.spec, plan.storage_url, plan.splits
    if splits is None:
        raise RuntimeError("the parent run is opened by the sweep command, which read the splits")
    study = open_study(spec, url)
    # "best" is chosen among trials on these rows
    study.set_user_attr(EVAL, splits.eval_fingerprint)
    strategy(spec).enqueue(study)  # a grid's points
    tags = {
        "textclf.role": "sweep",
        "study.sampler": spec.sampler,
        "study.pruner": spec.pruner,
        **provenance.objective_tag(spec.objectives),
        "study.space": json.dumps(spec.describe_space()),
        "textclf.split_fingerprint": splits.fingerprint,
        "textclf.eval_fingerprint": splits.eval_fingerprint,
    }
    reuse = {"textclf.study": spec.name, "study.storage": provenance.redact("storage", url)}
    if launched_by_mlflow:
        sweep_runs.update_run(launched_by_mlflow, {**tags, **reuse}, {})
        return launched_by_mlflow
    return sweep_runs.start_parent(
        plan.base.tracking.experiment, spec.name, tags, reuse, plan.base.tracking.heartbeat_s
    )


def run_workers(sweep: Sweep, spec_path: str, environments: list[dict[str, str]] | None) -> None:
    """This process as the only worker, or worker processes of this command, one GPU each."""
    if environments is None:
        return run_worker(sweep)
    argv = [
        "sweep",
        spec_path,
        "--storage",
        sweep.storage_url,
        "--tracking-uri",
        sweep.tracking_uri,
        "--worker-of",
        sweep.parent_run_id,
        *(["--n-trials", str(sweep.spec.n_trials)] if sweep.spec.n_trials else []),
        *[a for o in sweep.overrides for a in ("-o", o)],
    ]
    code = spread.spawn(
        argv,
        environments,
        {"MLFLOW_TRACKING_URI": sweep.tracking_uri},
        first_index=sweep.worker * len(environments),
    )
    if code:
        raise SweepStopped(f"a sweep worker exited with code {code}; see its output above")
