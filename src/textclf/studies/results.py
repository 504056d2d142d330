"""After the trials: seed repeats of the best trials, the parent run's final tags, trial table and report,
and the summary the command prints."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import optuna
import pandas as pd

from textclf import names
from textclf.config import replace
from textclf.run import TrialHooks, train_run
from textclf.studies.objective import Sweep, end_dead_trials, release_memory
from textclf.studies.spec import FixedTrial, SweepSpec, trial_config
from textclf.studies.study import EVAL, best_tags, comparable, open_study, trial_table
from textclf.tracking import provenance, queries, sweep_runs

log = logging.getLogger(__name__)


def repeat_top(sweep: Sweep, study: optuna.Study, k: int, seeds: int) -> None:
    """Seed noise: rerun the best `k` complete trials with `seeds` - 1 more training seeds each, as extra
    child runs tagged textclf.repeat_of; repeats already logged (a resumed command) are not run again."""
    # among the trials on the base config's evaluation rows, as the best trial is chosen
    complete = comparable(study, study.user_attrs.get(EVAL))
    complete.sort(key=lambda t: t.value, reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
    done = queries.repeats_of(sweep.parent_run_id)
    for trial in complete[:k]:
        base = replace(trial_config(sweep.spec, FixedTrial(trial.params), sweep.overrides),
                       tracking__experiment=sweep.experiment)
        for offset in range(1, seeds):
            seed = base.train.seed + offset
            if (str(trial.number), str(seed)) in done:
                continue
            hooks = TrialHooks(sweep.parent_run_id, {"repeat.of_trial": trial.number},
                               {"textclf.repeat_of": str(trial.number), "textclf.study": sweep.spec.name},
                               name=names.trial_name(trial.number, base, sweep.spec.searched_keys(), seed=seed),
                               # repeats measure noise; the trial keeps its model
                               keep_model=lambda metrics, rows: False)
            log.info("repeat of trial %d with train.seed=%d", trial.number, seed)
            train_run(replace(base, train__seed=seed), sweep.tracking_uri, hooks)
            release_memory()


def finish(spec: SweepSpec, url: str, parent: str) -> optuna.Study:
    """The parent's final tags, leaderboard and report; trials of workers that died are ended."""
    study = open_study(spec, url)
    optuna.storages.fail_stale_trials(study)  # a worker killed after its last trial started
    end_dead_trials(study)
    sweep_runs.update_run(parent, best_tags(study), {"trials.csv": trial_table(study).to_csv()})
    attach_report(parent, study)
    return study


def attach_report(parent: str, study: optuna.Study) -> None:
    """Regenerate the report and attach it to the parent run, so the MLflow UI shows the answer."""
    from textclf.reporting.build import build_report
    from textclf.reporting.tables import select_runs

    try:
        with tempfile.TemporaryDirectory() as tmp:
            build_report(select_runs(parent), Path(tmp), study)
            sweep_runs.attach_report(parent, Path(tmp))
    except Exception as e:  # the study's results stand without the report; `textclf report` can redo it
        log.warning("could not build the sweep report: %s", e)


def summary_text(study: optuna.Study, url: str, parent: str, uri: str) -> str:
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        table = trial_table(study).drop(columns=["mlflow_run_id"], errors="ignore").head(20)
        if "error" in table:
            table["error"] = table["error"].str.slice(0, 60)
        table = table.to_string()
    return (f"{table}\n\nstudy {study.study_name!r}: {len(study.trials)} trials in {provenance.redact('url', url)}\n"
            f"  optuna.load_study(study_name={study.study_name!r}, storage={provenance.redact('url', url)!r})\n"
            f"parent run {parent} in {uri}")
