"""One trial of a sweep: its config from the search space, a training run as a child of the parent run, the
objective value(s), and its bookkeeping afterwards (the child's state tag, the parent's best-trial tags and
trial table). Every failure of the trial's own making is recorded, counted and shown; the sweep stops after
study.max_failures of them in a row."""
from __future__ import annotations

import dataclasses
import gc
import logging
import math

import optuna
import torch

from textclf import interrupts, names
from textclf.config import Config, load_config, replace
from textclf.errors import InputError, SweepStopped
from textclf.run import TrialHooks, train_run
from textclf.studies import grid, models
from textclf.studies.spec import GRID_POINT, SweepSpec, trial_config
from textclf.studies.study import EVAL, FINISHED_STATES, TrialState, best_tags, trial_table
from textclf.tracking import liveness, sweep_runs
from textclf.training.metrics import HEADLINE_METRICS, RUNNING

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


def objective(sweep: Sweep, trial: optuna.Trial) -> float | tuple[float, ...]:
    """One trial: its config, a training run as a child of the parent, the objective value(s). Every failure
    of the trial's own making is recorded as the user attribute `error` (so it counts toward n_trials and
    study.max_failures) and leaves its child run FAILED with the reason."""
    interrupts.check()  # a Ctrl-C swallowed between trials ends the sweep here
    hooks = TrialHooks(sweep.parent_run_id, {"trial.number": trial.number, "trial.study": sweep.spec.name},
                       {"trial.number": str(trial.number), "textclf.study": sweep.spec.name},
                       killed_by=(optuna.TrialPruned,),
                       on_start=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id))
    if sweep.spec.sampler == "grid":
        grid.claim(sweep.spec, trial)  # two commands may have enqueued one point: only one runs it
    try:
        # trials never register their model themselves: the sweep registers its best (studies/models.py)
        cfg = replace(trial_config(sweep.spec, trial, sweep.overrides), tracking__experiment=sweep.experiment,
                      tracking__register_as=None)
        hooks = dataclasses.replace(hooks, name=names.trial_name(trial.number, cfg, sweep.spec.searched_keys()),
                                    keep_model=models.keeps_model(sweep.spec, trial.study),
                                    report=lambda row, epoch: _report(trial, sweep.spec.objectives[0][0], row, epoch,
                                                                      last=cfg.train.epochs))
        flat = cfg.flat()
        for key in set(sweep.spec.varied_keys()) - set(trial.params):  # grid points and follows rules:
            trial.set_user_attr(key, ",".join(map(str, flat[key])) if isinstance(flat[key], list) else flat[key])
        result = _train_with_oom_retry(cfg, sweep, hooks, trial)
        trial.set_user_attr(EVAL, result.eval_fingerprint)  # "best" compares trials on the same rows only
        if result.model_uri:
            trial.set_user_attr(models.MODEL_URI, result.model_uri)
        values = objective_values(sweep.spec, result.metrics)
    except (optuna.TrialPruned, KeyboardInterrupt):
        raise
    except InputError as e:  # rejected before a run existed: record it as a FAILED child all the same
        error = "; ".join(e.problems)
        chosen = {**sweep.spec.grid[trial.params[GRID_POINT]]} if GRID_POINT in trial.params else {}
        name = names.trial_name(trial.number, {**trial.params, **chosen}, sweep.spec.searched_keys())
        run_id = sweep_runs.failed_child(_safe_base(sweep), sweep.parent_run_id, hooks.params, hooks.tags, error,
                                         name)
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("error", error[:500])
        raise RuntimeError(error) from None
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        trial.set_user_attr("error", error[:500])
        if trial.user_attrs.get("mlflow_run_id"):  # a run that finished before the trial failed
            sweep_runs.fail_if_finished(trial.user_attrs["mlflow_run_id"], error)
        raise
    finally:
        release_memory()
    for key in (*HEADLINE_METRICS, *(f"{m}_ci_{end}" for m, _ in sweep.spec.objectives for end in ("low", "high"))):
        if key in result.metrics:  # the summary table shows each objective with its 95% interval
            trial.set_user_attr(key, float(result.metrics[key]))
    return values[0] if len(values) == 1 else values


def objective_values(spec: SweepSpec, metrics: dict[str, float]) -> tuple[float, ...]:
    """The study's objective values from a run's final metrics; a missing or non-finite value fails the trial
    with a reason (Optuna would fail it without one)."""
    values = []
    for metric, _ in spec.objectives:
        if metric not in metrics:
            raise RuntimeError(f"the run logged no {metric!r}, the study's objective (e.g. peak_gpu_mem_mb exists "
                               f"on a GPU only)")
        if not math.isfinite(float(metrics[metric])):
            raise RuntimeError(f"the objective {metric} is {metrics[metric]}")
        values.append(float(metrics[metric]))
    return tuple(values)


def stop_after_failures(spec: SweepSpec):
    """A trial callback: the sweep stops (SweepStopped, exit 1) once study.max_failures trials in a row,
    in order of completion across all workers, failed by their own error."""
    def check(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = sorted((t for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
                       if grid.DUPLICATE not in t.user_attrs and t.datetime_complete),
                      key=lambda t: t.datetime_complete)
        last = done[-spec.max_failures:]
        if len(last) == spec.max_failures and all(t.state == TrialState.FAIL and "error" in t.user_attrs
                                                  for t in last):
            raise SweepStopped(f"{spec.max_failures} trials in a row failed (study.max_failures); the last, trial "
                               f"{last[-1].number}: {last[-1].user_attrs['error'][:300]}. Fix the cause, then rerun "
                               f"the same command to resume the study")
    return check


# CUDA allocation failures that reach Python as a plain RuntimeError (cuBLAS/cuDNN workspaces, attention kernels)
_OOM_MESSAGES = ("out of memory", "ALLOC_FAILED", "NOT_ENOUGH_WORKSPACE")


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and any(m in str(error) for m in _OOM_MESSAGES))


def _train_with_oom_retry(cfg: Config, sweep: Sweep, hooks: TrialHooks, trial: optuna.Trial):
    try:
        return train_run(cfg, sweep.tracking_uri, hooks)
    except RuntimeError as e:  # torch.OutOfMemoryError is one
        if not is_out_of_memory(e) or not sweep.spec.retry_oom or cfg.train.batch_size < 2:
            raise
    # once, with the micro-batch divided by its smallest factor f and f times the accumulation: exactly the
    # same effective batch (16 -> 8 x 2, 15 -> 5 x 3, a prime 13 -> 1 x 13)
    t = cfg.train
    factor = next(f for f in range(2, t.batch_size + 1) if t.batch_size % f == 0)
    micro, accum = t.batch_size // factor, t.grad_accum_steps * factor
    note = (f"batch {t.batch_size} x {t.grad_accum_steps} -> {micro} x {accum} "
            f"(effective batch {t.effective_batch_size()} kept)")
    log.warning("trial %d ran out of memory; retrying once: %s", trial.number, note)
    sweep_runs.delete_run(trial.user_attrs["mlflow_run_id"])  # one child run per trial
    release_memory()
    smaller = replace(cfg, train__batch_size=micro, train__grad_accum_steps=accum)
    retry = dataclasses.replace(hooks, tags={**hooks.tags, "textclf.oom_retry": note})
    return train_run(smaller, sweep.tracking_uri, retry)


def running_value(metric: str, row: dict[str, float]) -> float | None:
    """The objective's value if training stopped now, from the lowest-val-loss epoch's row so far; None for
    objectives without a per-epoch value (only known at the end, e.g. train_time_s)."""
    return row[RUNNING[metric]] if metric in RUNNING else None


def _report(trial: optuna.Trial, metric: str, row: dict[str, float], epoch: int, last: int) -> None:
    """The pruner sees the running objective, so a pruned trial's stored value (its last report) is the same
    quantity as a complete trial's value. Never after the `last` epoch: its compute is spent, and a complete
    trial has its test metrics and model where a pruned one would have neither."""
    value = running_value(metric, row)
    if len(trial.study.directions) > 1 or value is None:
        return  # optuna does not prune multi-objective studies
    trial.report(value, epoch)
    if epoch < last and trial.should_prune():
        raise optuna.TrialPruned(f"pruned after epoch {epoch} ({metric} so far {value:.4f})")


def end_dead_trials(study: optuna.Study) -> int:
    """Child runs of trials that Optuna failed for a lost heartbeat (their worker was killed) are still
    RUNNING in MLflow, or FINISHED when the kill came between the run's end and the trial's: end them
    FAILED with the reason (a FAIL trial never keeps a FINISHED child). Returns how many were ended."""
    ended = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        run_id = trial.user_attrs.get("mlflow_run_id")
        reason = f"trial {trial.number}: its worker stopped sending heartbeats (killed, or its machine was lost)"
        dead = "error" not in trial.user_attrs  # else the trial failed itself and its run says why already
        if run_id and (liveness.end_dead(run_id, reason) or (dead and sweep_runs.fail_if_finished(run_id, reason))):
            sweep_runs.update_run(run_id, {"trial.state": "FAIL"}, {})
            ended += 1
    return ended


def record_trial(sweep: Sweep, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """After each trial: its child run's state tag, the parent's best-trial tags and leaderboard; child
    runs of trials whose worker died are ended."""
    try:
        _record(sweep, study, trial)
    finally:  # a Ctrl-C that arrived during the trial's clean-up (garbage collection) ends the sweep here
        interrupts.check()


def _record(sweep: Sweep, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if grid.DUPLICATE in trial.user_attrs:
        log.info("trial %d skipped: its grid point is taken by trial %d", trial.number,
                 trial.user_attrs[grid.DUPLICATE])
        return
    reason = f" ({trial.user_attrs.get('error', '')})" if trial.state.name == "FAIL" else ""
    log.info("trial %d %s%s%s", trial.number, trial.state.name, f" {trial.values}" if trial.values else "", reason)
    try:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:  # the run itself already ended with the matching status (STATUS)
            sweep_runs.update_run(run_id, {"trial.state": trial.state.name}, {})
        end_dead_trials(study)
        models.prune(sweep.spec, study)
        sweep_runs.update_run(sweep.parent_run_id, best_tags(study),
                            {"trials.csv": trial_table(study).to_csv()})
    except Exception as e:  # a tracking hiccup must not stop the study; the next trial rewrites all of it
        log.warning("could not record trial %d in MLflow: %s", trial.number, e)


def _safe_base(sweep: Sweep) -> Config:
    return load_config(sweep.spec.base, (), [(str(sweep.spec.path), sweep.spec.config)])


def release_memory() -> None:
    gc.collect()  # a Ctrl-C raised in a finalizer here is swallowed by Python: record_trial raises it again
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
