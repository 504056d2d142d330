"""A study's trials read back: which count, which are comparable (scored on the same rows), the
best, the per-trial table and the best-trial tags written to the parent run. Where the study lives
is storage.py; how it proposes trials, strategies.py.

Trial state -> child run status: COMPLETE -> FINISHED, PRUNED -> KILLED, FAIL -> FAILED (with the
reason as a tag).
"""

from __future__ import annotations

import json

import optuna

from textclf.stats.choices import pareto_front
from textclf.studies import grid
from textclf.studies.spec import GRID_POINT

STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


STATE_RANK = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2}


TrialState = optuna.trial.TrialState


FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


# trial and study user attribute: the evaluation rows (data/splits.py eval fingerprint) a trial was
# scored on; on the study, the base config's
EVAL = "eval_fingerprint"


def comparable(study: optuna.Study, rows: str | None) -> list[optuna.trial.FrozenTrial]:
    """Complete trials scored on the evaluation rows `rows` (an eval fingerprint; trials recorded
    before textclf kept it count as the base config's). A grid over data.seed scores each seed on
    other rows: their values differ by the rows as much as by the models, so "best" is only chosen
    among trials on the same rows."""
    base = study.user_attrs.get(EVAL)
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get(EVAL, base) == rows
    ]


def candidates(study: optuna.Study) -> int:
    """How many trials the best was chosen among on the base config's rows: the complete ones and
    those pruned on the same rows (they could have completed). The champion test corrects for
    them (registry.SELECTED_FROM)."""
    base = study.user_attrs.get(EVAL)
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.user_attrs.get(EVAL, base) == base
    )


def signs(study: optuna.Study) -> list[int]:
    """+1 for each objective the study maximises, -1 for each it minimises."""
    return [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in study.directions]


def best_trials(study: optuna.Study, rows: str | None = None) -> list[optuna.trial.FrozenTrial]:
    """The best complete trials on `rows` (default: the base config's rows, the study's EVAL
    attribute): the one best for a single objective, the Pareto front for several
    (stats/choices.py); [] when no trial was scored on them."""
    group, sign = comparable(study, rows or study.user_attrs.get(EVAL)), signs(study)
    if len(sign) == 1:
        return sorted(group, key=lambda t: (-sign[0] * t.values[0], t.number))[:1]
    return [group[i] for i in pareto_front([t.values for t in group], sign)]


def best_tags(study: optuna.Study) -> dict[str, str]:
    """The parent run's best-trial tags: the best among trials on the base config's rows."""
    front = best_trials(study)
    if not front:
        return {}
    best = front[0]
    tags = {
        "best_trial": str(best.number),
        "best_run_id": best.user_attrs.get("mlflow_run_id", ""),
        "best_value": json.dumps(best.values),
    }
    if len(study.directions) > 1:
        tags["pareto_trials"] = ",".join(str(t.number) for t in front)
    return tags


def trial_table(study: optuna.Study):
    """One row per trial: state, objective value(s), varied config values, key metrics, duration,
    MLflow run id, error; best first."""
    frame = study.trials_dataframe(
        attrs=(
            "number",
            "state",
            "value" if len(study.directions) == 1 else "values",
            "params",
            "user_attrs",
            "duration",
        )
    )
    frame.columns = [c.removeprefix("params_").removeprefix("user_attrs_") for c in frame.columns]
    frame = frame.loc[:, ~frame.columns.duplicated()]
    if grid.DUPLICATE in frame:  # trials that found their grid point taken ran nothing
        frame = frame[frame.pop(grid.DUPLICATE).isna()]
    if "duration" in frame:
        frame["duration_s"] = frame.pop("duration").dt.total_seconds().round(1)
    last = [c for c in ("mlflow_run_id", "error") if c in frame]
    frame = frame[[c for c in frame.columns if c not in last and c != GRID_POINT] + last]
    values = [c for c in frame.columns if c == "value" or c.startswith("values_")]
    # complete trials first, then pruned, failed, running; each by the objective
    if values and len(frame):
        ascending = [d == optuna.study.StudyDirection.MINIMIZE for d in study.directions]
        rank = frame["state"].map(STATE_RANK).fillna(len(STATE_RANK))
        frame = (
            frame.assign(_rank=rank)
            .sort_values(
                ["_rank", *values], ascending=[True, *ascending], na_position="last", kind="stable"
            )
            .drop(columns="_rank")
        )
    return frame.set_index("number")


def finished_count(study: optuna.Study) -> int:
    """Trials that count toward the target: complete, pruned, or failed by their own error. A trial
    that failed because its worker died (heartbeat) or was interrupted has no error and does not
    count: it is retried (study.retries) or its budget goes to a new trial."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
        if t.state != optuna.trial.TrialState.FAIL or "error" in t.user_attrs
    )
