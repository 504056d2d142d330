"""A sweep's bookkeeping around its trials, in MLflow and the study: after each trial its child
run's state tag, the parent's best-trial tags and trial table, the superseded models deleted; child
runs of trials whose worker died ended FAILED; the sweep stopped after study.max_failures failures
in a row."""

from __future__ import annotations

import dataclasses
import gc
import logging
from datetime import datetime

import optuna
import torch

from textclf import interrupts
from textclf.errors import SweepStopped
from textclf.studies import best_models, grid
from textclf.studies.spec import SweepSpec
from textclf.studies.study import FINISHED_STATES, TrialState, best_tags, trial_table
from textclf.tracking import liveness, sweep_runs

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Sweep:
    spec: SweepSpec
    storage_url: str
    tracking_uri: str
    parent_run_id: str
    experiment: str
    overrides: tuple[str, ...] = ()
    worker: int = 0  # index of this worker process; its sampler's seed derives from it


def stop_after_failures(spec: SweepSpec):
    """A trial callback: the sweep stops (SweepStopped, exit 1) once study.max_failures trials in a
    row, in order of completion across all workers, failed by their own error."""

    def check(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = sorted(
            (
                t
                for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
                if grid.DUPLICATE not in t.user_attrs and t.datetime_complete
            ),
            key=lambda t: t.datetime_complete or datetime.min,  # each has one (filtered above)
        )
        last = done[-spec.max_failures :]
        if len(last) == spec.max_failures and all(
            t.state == TrialState.FAIL and "error" in t.user_attrs for t in last
        ):
            raise SweepStopped(
                f"{spec.max_failures} trials in a row failed (study.max_failures); "
                f"the last, trial {last[-1].number}: "
                f"{last[-1].user_attrs['error'][:300]}. Fix the cause, then rerun "
                "the same command to resume the study"
            )

    return check


def end_dead_trials(study: optuna.Study) -> int:
    """Child runs of trials that Optuna failed for a lost heartbeat (their worker was killed) are
    still RUNNING in MLflow, or FINISHED when the kill came between the run's end and the trial's:
    end them FAILED with the reason (a FAIL trial never keeps a FINISHED child). Returns how many
    were ended."""
    ended = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_id = trial.user_attrs.get("mlflow_run_id")
        reason = (
            f"trial {trial.number}: its worker stopped sending heartbeats (killed, or its "
            "machine was lost)"
        )
        # else the trial failed itself and its run says why already
        dead = "error" not in trial.user_attrs
        if run_id and (
            liveness.end_dead(run_id, reason)
            or (dead and sweep_runs.fail_if_finished(run_id, reason))
        ):
            sweep_runs.update_run(run_id, {"trial.state": "FAIL"}, {})
            ended += 1
    return ended


def record_trial(sweep: Sweep, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """After each trial: its child run's state tag, the parent's best-trial tags and leaderboard;
    child runs of trials whose worker died are ended."""
    try:
        _record(sweep, study, trial)
    # a Ctrl-C that arrived during the trial's clean-up (garbage collection) ends the sweep here
    finally:
        interrupts.check()


def _record(sweep: Sweep, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if grid.DUPLICATE in trial.user_attrs:
        log.info(
            "trial %d skipped: its grid point is taken by trial %d",
            trial.number,
            trial.user_attrs[grid.DUPLICATE],
        )
        return
    reason = f" ({trial.user_attrs.get('error', '')})" if trial.state.name == "FAIL" else ""
    log.info(
        "trial %d %s%s%s",
        trial.number,
        trial.state.name,
        f" {trial.values}" if trial.values else "",
        reason,
    )
    try:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:  # the run itself already ended with the matching status (STATUS)
            sweep_runs.update_run(run_id, {"trial.state": trial.state.name}, {})
        end_dead_trials(study)
        best_models.prune(sweep.spec, study)
        sweep_runs.update_run(
            sweep.parent_run_id, best_tags(study), {"trials.csv": trial_table(study).to_csv()}
        )
    # a tracking hiccup must not stop the study; the next trial rewrites all of it
    except Exception as e:
        log.warning("could not record trial %d in MLflow: %s", trial.number, e)


def release_memory() -> None:
    # a Ctrl-C raised in a finalizer here is swallowed by Python: record_trial raises it again
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
