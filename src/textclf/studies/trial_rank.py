"""The program each rank of a sweep trial on several processes runs (train.devices > 1 in a sweep,
or `textclf sweep --devices-per-trial K`), as the launcher (run/launch.py) starts it:

    python -m textclf.studies.trial_rank DIRECTORY/spec.json

It runs run/rank.py's main, and rank 0 is the trial: it opens the study (its storage and
pruner, as the sweep made them) and the trial by its id, and rebuilds the hooks the sweep's worker
gave the trial (objective.py): the child run's name, params and tags, its id told to the trial,
the epochs told to the pruner, the keep-model rule. A pruned trial ends every rank with exit 0, and
rank 0's result says so ({"stopped": why}); the worker then marks the trial PRUNED.
"""

from __future__ import annotations

import sys

import optuna

from textclf.config import Config
from textclf.run import TrialHooks, rank
from textclf.studies import best_models
from textclf.studies.pruning import report
from textclf.studies.spec_file import load_spec
from textclf.studies.storage import open_study

ENTRY = "textclf.studies.trial_rank"


def described(
    hooks: TrialHooks, trial: optuna.Trial, sweep_file: str, overrides: tuple[str, ...], url: str
) -> dict:
    """What rank 0 needs to rebuild `hooks` (the callables stay behind)."""
    return {
        "entry": ENTRY,
        "sweep_file": sweep_file,
        "overrides": list(overrides),
        "storage": url,
        "trial_id": trial._trial_id,
        "parent_run_id": hooks.parent_run_id,
        "params": hooks.params,
        "tags": hooks.tags,
        "name": hooks.name,
    }


def rebuilt(told: dict, epochs: int) -> TrialHooks:
    """The trial's hooks on rank 0, talking to the study's storage."""
    spec = load_spec(told["sweep_file"], tuple(told["overrides"]))
    study = open_study(spec, told["storage"])
    trial = optuna.trial.Trial(study, told["trial_id"])
    metric = spec.objectives[0][0]
    return TrialHooks(
        told["parent_run_id"],
        told["params"],
        told["tags"],
        report=lambda row, epoch: report(trial, metric, row, epoch, last=epochs),
        killed_by=(optuna.TrialPruned,),
        on_start=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id),
        name=told["name"],
        keep_model=best_models.keeps_model(spec, study),
    )


def hooks_of(spec: dict, cfg: Config) -> TrialHooks:
    return rebuilt(spec["trial"], cfg.train.epochs)


if __name__ == "__main__":
    rank.main(sys.argv[1], hooks_of)
