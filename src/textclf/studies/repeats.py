"""Seed noise: the best trials rerun with more training seeds (`textclf sweep --repeat-best K
--seeds N`), as extra child runs of the sweep tagged textclf.repeat_of; the report reads the spread
(reporting/noise.py seed_noise)."""

from __future__ import annotations

import logging

import optuna

from textclf.config import replace
from textclf.run import TrialHooks, train_run
from textclf.studies.records import Sweep, release_memory
from textclf.studies.spec import FixedTrial, trial_config
from textclf.studies.study import EVAL, comparable
from textclf.tracking import names, queries

log = logging.getLogger(__name__)


def repeat_top(sweep: Sweep, study: optuna.Study, k: int, seeds: int) -> None:
    """Seed noise: rerun the best `k` complete trials with `seeds` - 1 more training seeds each,
    as extra child runs tagged textclf.repeat_of; repeats already logged (a resumed command) are
    not run again."""
    # among the trials on the base config's evaluation rows, as the best trial is chosen
    complete = comparable(study, study.user_attrs.get(EVAL))
    complete.sort(key=_value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    done = queries.repeats_of(sweep.parent_run_id)
    for trial in complete[:k]:
        base = replace(
            trial_config(sweep.spec, FixedTrial(trial.params), sweep.overrides),
            tracking__experiment=sweep.experiment,
        )
        for offset in range(1, seeds):
            seed = base.train.seed + offset
            if (str(trial.number), str(seed)) in done:
                continue
            hooks = TrialHooks(
                sweep.parent_run_id,
                {"repeat.of_trial": trial.number},
                {"textclf.repeat_of": str(trial.number), "textclf.study": sweep.spec.name},
                name=names.trial_name(trial.number, base, sweep.spec.searched_keys(), seed=seed),
                # repeats measure noise; the trial keeps its model
                keep_model=lambda metrics, rows: False,
            )
            log.info("repeat of trial %d with train.seed=%d", trial.number, seed)
            train_run(replace(base, train__seed=seed), sweep.tracking_uri, hooks)
            release_memory()


def _value(trial: optuna.trial.FrozenTrial) -> float:
    if trial.value is None:  # comparable() returns complete single-objective trials only
        raise ValueError(f"trial {trial.number} has no value")
    return trial.value
