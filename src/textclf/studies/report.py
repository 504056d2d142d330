"""After the trials: the parent run's final tags, trial table and report (reporting/ draws it;
Optuna's views of the study come from views.py), and the summary the command prints."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import optuna
import pandas as pd

from textclf.studies.records import end_dead_trials
from textclf.studies.spec import SweepSpec
from textclf.studies.study import best_tags, best_trials, open_study, trial_table
from textclf.studies.views import optuna_views
from textclf.tracking import provenance, saved_view, sweep_runs

log = logging.getLogger(__name__)


def finish(spec: SweepSpec, url: str, parent: str) -> optuna.Study:
    """The parent's final tags, leaderboard and report; trials of workers that died are ended."""
    study = open_study(spec, url)
    optuna.storages.fail_stale_trials(study)  # a worker killed after its last trial started
    end_dead_trials(study)
    sweep_runs.update_run(parent, best_tags(study), {"trials.csv": trial_table(study).to_csv()})
    show_in_ui(spec, study, parent)
    attach_report(parent, study)
    return study


def show_in_ui(spec: SweepSpec, study: optuna.Study, parent: str) -> None:
    """The parent row's best values (the best trial run's, intervals included) and evaluation
    datasets, and the trials' saved view (tracking/saved_view.py)."""
    front = best_trials(study)
    best = front[0].user_attrs.get("mlflow_run_id") if front else None
    try:
        saved_view.show_sweep(parent, best, dict(spec.objectives), spec.varied_keys())
    except Exception as e:  # the study's results stand without it
        log.warning("could not save the sweep's MLflow view: %s", e)


def attach_report(parent: str, study: optuna.Study) -> None:
    """Regenerate the report and attach it to the parent run, so the MLflow UI shows the answer."""
    from textclf.reporting import build
    from textclf.reporting.tables import select_runs

    try:
        with tempfile.TemporaryDirectory() as tmp:
            build.build_report(select_runs(parent), Path(tmp), optuna_views(study))
            sweep_runs.attach_report(parent, Path(tmp))
    # the study's results stand without the report; `textclf report` can redo it
    except Exception as e:
        log.warning("could not build the sweep report: %s", e)


def summary_text(study: optuna.Study, url: str, parent: str, uri: str) -> str:
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        table = trial_table(study).drop(columns=["mlflow_run_id"], errors="ignore").head(20)
        if "error" in table:
            table["error"] = table["error"].str.slice(0, 60)
        table = table.to_string()
    return (f"{table}\n\nstudy {study.study_name!r}: {len(study.trials)} trials in "
            f"{provenance.redact('url', url)}\n  "
            f"optuna.load_study(study_name={study.study_name!r}, "
            f"storage={provenance.redact('url', url)!r})\nparent run {parent} in {uri}")
