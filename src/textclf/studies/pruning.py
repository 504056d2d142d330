"""What a trial tells its pruner each epoch: the running objective, as the trial's value would be
if training stopped now (the worker's hooks and a trial's rank 0 alike)."""

from __future__ import annotations

import optuna

from textclf.training.metrics import RUNNING


def running_value(metric: str, row: dict[str, float]) -> float | None:
    """The objective's value if training stopped now, from the lowest-val-loss epoch's row so far;
    None for objectives without a per-epoch value (only known at the end, e.g. train_time_s)."""
    return row[RUNNING[metric]] if metric in RUNNING else None


def report(trial: optuna.Trial, metric: str, row: dict[str, float], epoch: int, last: int) -> None:
    """The pruner sees the running objective, so a pruned trial's stored value (its last report)
    is the same quantity as a complete trial's value. Never after the `last` epoch: its compute
    is spent, and a complete trial has its test metrics and model where a pruned one would have
    neither."""
    value = running_value(metric, row)
    if len(trial.study.directions) > 1 or value is None:
        return  # optuna does not prune multi-objective studies
    trial.report(value, epoch)
    if epoch < last and trial.should_prune():
        raise optuna.TrialPruned(f"pruned after epoch {epoch} ({metric} so far {value:.4f})")
