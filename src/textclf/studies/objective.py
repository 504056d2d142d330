"""One trial of a sweep: its config from the search space, a training run as a child of the parent
run (retried once with smaller micro-batches if it runs out of memory), the pruner told each epoch,
and the objective value(s). Every failure of the trial's own making is recorded on the trial and its
child run (records.py counts them)."""

from __future__ import annotations

import dataclasses
import logging
import math

import optuna
import torch

from textclf import interrupts
from textclf.config import Config, load_config, replace
from textclf.errors import InputError
from textclf.run import TrialHooks, train_run
from textclf.stats.intervals import bounds
from textclf.studies import best_models
from textclf.studies.pruning import report
from textclf.studies.records import Sweep, release_memory
from textclf.studies.spec import GRID_POINT, SweepSpec, trial_config
from textclf.studies.strategies import strategy
from textclf.studies.study import EVAL
from textclf.studies.trial_rank import described
from textclf.tracking import names, sweep_runs
from textclf.training.summary import HEADLINE_METRICS

log = logging.getLogger(__name__)


def objective(sweep: Sweep, trial: optuna.Trial) -> float | tuple[float, ...]:
    """One trial: its config, a training run as a child of the parent, the objective value(s). Every
    failure of the trial's own making is recorded as the user attribute `error` (so it counts toward
    n_trials and study.max_failures) and leaves its child run FAILED with the reason."""
    interrupts.check()  # a Ctrl-C swallowed between trials ends the sweep here
    hooks = TrialHooks(
        sweep.parent_run_id,
        {"trial.number": trial.number, "trial.study": sweep.spec.name},
        {"trial.number": str(trial.number), "textclf.study": sweep.spec.name},
        killed_by=(optuna.TrialPruned,),
        on_start=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id),
    )
    strategy(sweep.spec).claim(trial)  # a grid point enqueued by two commands runs once
    cfg = None
    try:
        # trials never register their model themselves: the sweep registers its best
        # (best_models.py)
        cfg = replace(
            trial_config(sweep.spec, trial, sweep.overrides),
            tracking__experiment=sweep.experiment,
            tracking__register_as=None,
        )
        hooks, flat = _trial_hooks(sweep, trial, hooks, cfg), cfg.flat()
        if cfg.train.devices > 1:  # its ranks' rank 0 rebuilds the hooks (trial_rank.py)
            told = described(hooks, trial, str(sweep.spec.path), sweep.overrides, sweep.storage_url)
            hooks = dataclasses.replace(hooks, on_ranks=told)
        _record_chosen(sweep.spec, trial, flat)
        result = _train_with_oom_retry(cfg, sweep, hooks, trial)
        # "best" compares trials on the same rows
        trial.set_user_attr(EVAL, result.eval_fingerprint)
        if result.model_uri:
            trial.set_user_attr(best_models.MODEL_URI, result.model_uri)
        values = objective_values(sweep.spec, result.metrics)
    except (optuna.TrialPruned, KeyboardInterrupt):
        raise
    # rejected before a run existed: recorded as a FAILED child all the same
    except InputError as e:
        _record_rejected(sweep, trial, hooks, "; ".join(e.problems), cfg)
        raise RuntimeError("; ".join(e.problems)) from None
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        trial.set_user_attr("error", error[:500])
        if trial.user_attrs.get("mlflow_run_id"):  # a run that finished before the trial failed
            sweep_runs.fail_if_finished(trial.user_attrs["mlflow_run_id"], error)
        raise
    finally:
        release_memory()
    _record_scores(sweep.spec, trial, result.metrics)
    return values[0] if len(values) == 1 else values


def _trial_hooks(sweep: Sweep, trial: optuna.Trial, hooks: TrialHooks, cfg: Config) -> TrialHooks:
    """The trial's run: tagged and named by what it varied, keeping its model only when it is the
    best so far on its rows, reporting each epoch to the pruner."""
    metric = sweep.spec.objectives[0][0]
    return dataclasses.replace(
        hooks,
        tags={**hooks.tags, **_varied_tags(sweep.spec, cfg.flat())},
        name=names.trial_name(trial.number, cfg, sweep.spec.searched_keys()),
        keep_model=best_models.keeps_model(sweep.spec, trial.study),
        report=lambda row, epoch: report(trial, metric, row, epoch, last=cfg.train.epochs),
    )


def _record_scores(spec: SweepSpec, trial: optuna.Trial, metrics: dict[str, float]) -> None:
    """The headline scores and objectives, each with its 95% interval, as user attributes: the
    summary table shows them."""
    shown = dict.fromkeys([*HEADLINE_METRICS, *(m for m, _ in spec.objectives)])
    for key in (k for m in shown for k in (m, *bounds(m))):
        if key in metrics:
            trial.set_user_attr(key, float(metrics[key]))


def _as_choice(value):
    """A config value as a trial records it: a list (freeze patterns) as "a,b", as Optuna does."""
    return ",".join(map(str, value)) if isinstance(value, list) else value


def _varied_tags(spec: SweepSpec, flat: dict) -> dict[str, str]:
    """The values the sweep varied, as tags too (`varied.<key>`): the runs table shows tags as
    columns, and a rejected trial's child (logged with the base config's params) says what it
    tried."""
    return {f"varied.{key}": str(_as_choice(flat[key])) for key in spec.varied_keys()}


def _record_chosen(spec: SweepSpec, trial: optuna.Trial, flat: dict) -> None:
    """The values a trial got from its grid point or a follows rule (not in trial.params)."""
    for key in set(spec.varied_keys()) - set(trial.params):
        trial.set_user_attr(key, _as_choice(flat[key]))


def _record_rejected(
    sweep: Sweep, trial: optuna.Trial, hooks: TrialHooks, error: str, cfg: Config | None
) -> None:
    """A trial whose config or model was rejected: a FAILED child run that says why, with the
    values it tried as its params (its config where one was built, else the base config's with the
    tried values over it), and the trial's error."""
    chosen = {**sweep.spec.grid[trial.params[GRID_POINT]]} if GRID_POINT in trial.params else {}
    tried = {**trial.params, **chosen}
    name = names.trial_name(trial.number, tried, sweep.spec.searched_keys())
    varied = {k: _as_choice(v) for k, v in tried.items() if k in sweep.spec.varied_keys()}
    run_id = sweep_runs.failed_child(
        cfg or _safe_base(sweep),
        sweep.parent_run_id,
        {**({} if cfg else varied), **hooks.params},
        {**{f"varied.{k}": str(v) for k, v in varied.items()}, **hooks.tags},
        error,
        name,
    )
    trial.set_user_attr("mlflow_run_id", run_id)
    trial.set_user_attr("error", error[:500])


def objective_values(spec: SweepSpec, metrics: dict[str, float]) -> tuple[float, ...]:
    """The study's objective values from a run's final metrics; a missing or non-finite value fails
    the trial with a reason (Optuna would fail it without one)."""
    values = []
    for metric, _ in spec.objectives:
        if metric not in metrics:
            raise RuntimeError(
                f"the run logged no {metric!r}, the study's objective (e.g. "
                "peak_gpu_mem_mb exists on a GPU only)"
            )
        if not math.isfinite(float(metrics[metric])):
            raise RuntimeError(f"the objective {metric} is {metrics[metric]}")
        values.append(float(metrics[metric]))
    return tuple(values)


# CUDA allocation failures that reach Python as a plain RuntimeError (cuBLAS/cuDNN workspaces,
# attention kernels)
_OOM_MESSAGES = ("out of memory", "ALLOC_FAILED", "NOT_ENOUGH_WORKSPACE")


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and any(m in str(error) for m in _OOM_MESSAGES)
    )


def _train_with_oom_retry(cfg: Config, sweep: Sweep, hooks: TrialHooks, trial: optuna.Trial):
    try:
        return train_run(cfg, sweep.tracking_uri, hooks)
    except RuntimeError as e:  # torch.OutOfMemoryError is one
        if not is_out_of_memory(e) or not sweep.spec.retry_oom or cfg.train.batch_size < 2:
            raise
    # once, with the micro-batch divided by its smallest factor f and f times the accumulation:
    # exactly the same effective batch (16 -> 8 x 2, 15 -> 5 x 3, a prime 13 -> 1 x 13)
    t = cfg.train
    factor = next(f for f in range(2, t.batch_size + 1) if t.batch_size % f == 0)
    micro, accum = t.batch_size // factor, t.grad_accum_steps * factor
    note = (
        f"batch {t.batch_size} x {t.grad_accum_steps} -> {micro} x {accum} (effective batch "
        f"{t.effective_batch_size()} kept)"
    )
    log.warning("trial %d ran out of memory; retrying once: %s", trial.number, note)
    sweep_runs.delete_run(trial.user_attrs["mlflow_run_id"])  # one child run per trial
    release_memory()
    smaller = replace(cfg, train__batch_size=micro, train__grad_accum_steps=accum)
    retry = dataclasses.replace(hooks, tags={**hooks.tags, "textclf.oom_retry": note})
    return train_run(smaller, sweep.tracking_uri, retry)


def _safe_base(sweep: Sweep) -> Config:
    return load_config(sweep.spec.base, (), [(str(sweep.spec.path), sweep.spec.config)])
