"""How a sweep trial's run differs from a plain `textclf train`: what the sweep hands the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textclf.training.loop import ReportFn


@dataclass(frozen=True)
class TrialHooks:
    """How a sweep trial's run differs: a child of the study's parent run, reporting each epoch."""

    parent_run_id: str
    params: dict[str, object]
    tags: dict[str, str]
    report: ReportFn | None = None  # (the best-val-loss epoch's row so far, epoch); raises to prune
    killed_by: tuple[type[BaseException], ...] = ()  # e.g. optuna.TrialPruned: the run ends KILLED
    on_start: Callable[[str], None] | None = None  # gets the child run's id as soon as it exists
    name: str | None = None  # the child run's name (names.trial_name)
    # given the final metrics and the eval fingerprint: log the model?
    keep_model: Callable[[dict[str, float], str], bool] | None = None
    # the trial as its ranks rebuild these hooks (train.devices > 1): the program the ranks run
    # ("entry") and what its rank 0 needs (studies/trial_rank.py); callables cannot travel
    on_ranks: dict | None = None
