"""After the trials: the parent run's final tags, trial table and report (reporting/ draws it;
Optuna's views of the study come from views.py), and the summary the command prints."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import optuna
import pandas as pd

from textclf.stats.intervals import bounds, with_interval
from textclf.studies.records import end_dead_trials
from textclf.studies.spec import SweepSpec
from textclf.studies.storage import open_study
from textclf.studies.study import best_tags, best_trials, candidates, trial_table
from textclf.studies.views import optuna_views
from textclf.tracking import provenance, saved_view, sweep_runs
from textclf.training.summary import HEADLINE_METRICS

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
        saved_view.show_sweep(
            parent, best, dict(spec.objectives), spec.varied_keys(), candidates(study)
        )
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


def summary_text(
    study: optuna.Study, url: str, parent: str, uri: str, trials: pd.DataFrame | None = None
) -> str:
    """What `textclf sweep` prints: the trials (`trials`: the study's trial_table, if read
    already), best first, each score with its 95% interval over the evaluation rows; the best
    trial's headline; where the study and the parent run are."""
    trials = trial_table(study) if trials is None else trials
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        shown = trials.drop(columns=["mlflow_run_id"], errors="ignore").head(20)
        if "error" in shown:
            shown["error"] = shown["error"].str.slice(0, 60)
        table = with_intervals(shown).to_string()
    where = provenance.redact("url", url)
    return (
        f"{table}\n\n{headline(study)}study {study.study_name!r}: {len(study.trials)} trials in "
        f"{where}\n  optuna.load_study(study_name={study.study_name!r}, storage={where!r})\n"
        f"parent run {parent} in {uri}"
    )


def with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Each score column with logged bounds as `0.8412 [0.81, 0.8702]` text, the bounds dropped."""
    out = table.copy()
    for column in [c for c in table.columns if set(bounds(c)) <= set(table.columns)]:
        rows = table[[column, *bounds(column)]].to_dict("records")
        out[column] = [with_interval(r, column) if pd.notna(r[column]) else "" for r in rows]
        out = out.drop(columns=list(bounds(column)))
    return out


def headline(study: optuna.Study) -> str:
    """The best trial's line: its objective, the best of N on these rows (selected on them), and
    its test scores with their intervals (not selected on)."""
    front = best_trials(study)
    if not front or len(study.directions) > 1:
        return ""
    best, n = front[0], candidates(study)
    metric = next(
        (m for m in HEADLINE_METRICS if best.user_attrs.get(m) == best.value), "objective"
    )
    tests = [
        f"{m} {with_interval(best.user_attrs, m)}"
        for m in ("test_accuracy", "test_f1")
        if m in best.user_attrs
    ]
    return (
        f"best trial {best.number} (the best of {n} on these validation rows): {metric} "
        f"{best.value:.4g} (selected on these rows: optimistic); {'; '.join(tests)}\n"
    )
