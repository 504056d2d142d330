"""The report's tables: the runs it covers, the leaderboard, comparability groups and seed noise.

Runs are read from MLflow (a sweep's parent run, the newest sweep of a study name, or a whole
experiment) into one pandas DataFrame, one row per run; the leaderboard is sorted by the study's
objective with the best row marked. Runs scored on different evaluation rows (val + test) or label
maps are grouped, never silently mixed; complete runs rank before pruned and failed ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from textclf.errors import InputError
from textclf.stats.intervals import bounds
from textclf.tracking import provenance, queries
from textclf.training.summary import DEFAULT_OBJECTIVE, HEADLINE_METRICS, is_derived

IGNORED_PARAMS = ("tracking.", "trial.", "train.progress", "max_length", "truncation")


@dataclass
class Selection:
    """The runs a report covers and how to rank them."""

    title: str
    runs: pd.DataFrame  # one row per run: run_id, status, params (section.key), metrics, tags
    objective: tuple[str, str] = DEFAULT_OBJECTIVE
    parent_run_id: str | None = None
    storage: str | None = None  # the study's Optuna storage, when known
    study_name: str | None = None
    varied: list[str] = field(default_factory=list)


def select_runs(target: str) -> Selection:
    """A parent run id, a study name (its newest sweep parent run), or an experiment name."""
    parent = queries.sweep_parent(target)
    if parent is not None:
        run_id, experiment, tags = parent
        objective = provenance.objective_of(tags) or DEFAULT_OBJECTIVE
        selection = Selection(
            f"study {tags.get('textclf.study', '?')} (parent run {run_id})",
            queries.children(run_id, experiment),
            objective,
            run_id,
            tags.get("study.storage"),
            tags.get("textclf.study"),
        )
    else:
        runs = queries.experiment_runs(target)
        if runs is None:
            raise InputError(
                [
                    f"report: {target!r} is neither a run id, a study name nor an "
                    f"experiment in {queries.current_uri()}; pass --tracking-uri or one "
                    "of those"
                ]
            )
        selection = Selection(f"experiment {target}", runs)
    if selection.runs.empty:
        raise InputError([f"report: {selection.title} has no runs yet"])
    selection.runs = _tidy(selection.runs)
    selection.varied = varied_params(selection.runs)
    return selection


def _tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """Columns without the `params.`/`metrics.` prefixes (tags keep theirs); numbers as numbers."""
    frame = pd.DataFrame({"run_id": runs["run_id"], "status": runs["status"]})
    for column in runs.columns:
        kind, _, name = column.partition(".")
        if kind in ("params", "metrics"):
            values = _maybe_numeric(runs[column]) if kind == "params" else runs[column]
            # runs logged before the derived values moved to metrics have them as params
            frame[name] = frame[name].combine_first(values) if name in frame else values
        elif column in (
            "tags.textclf.split_fingerprint",
            "tags.textclf.eval_fingerprint",
            "tags.trial.state",
            "tags.mlflow.runName",
            "tags.textclf.repeat_of",
            "tags.textclf.study",
            "tags.textclf.monitor",
        ):
            frame[column.removeprefix("tags.")] = runs[column]
    labels = runs.get("tags.textclf.label_map", pd.Series(np.nan, index=runs.index, dtype=object))
    frame["data.label_map"] = labels.combine_first(frame.get("data.label_map", labels)).fillna("")
    return frame.reset_index(drop=True)


def _maybe_numeric(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    return converted if converted.notna().sum() == column.notna().sum() else column


def varied_params(runs: pd.DataFrame) -> list[str]:
    """Config params that take more than one value across the runs: what the study varied."""
    params = [
        c
        for c in runs.columns
        if re.fullmatch(r"(data|model|train)\.\w+", c)
        and not c.startswith(IGNORED_PARAMS)
        and not is_derived(c)
    ]
    return sorted(c for c in params if runs[c].astype(str).nunique(dropna=False) > 1)


# complete, pruned or stopped, failed; then running
STATUS_RANK = {"FINISHED": 0, "KILLED": 1, "FAILED": 2}


def leaderboard(selection: Selection) -> pd.DataFrame:
    """One row per run, the varied hyperparameters and the metrics people compare; complete runs
    first, each comparability group by the objective, the best finished run of each group marked."""
    runs = selection.runs
    metric, direction = selection.objective
    repeated = "textclf.repeat_of" in runs and bool(runs["textclf.repeat_of"].notna().any())
    # every score a run was selected or judged by, with its 95% interval over the evaluation rows
    # beside it
    scores = [c for m in (metric, *HEADLINE_METRICS) for c in (m, *bounds(m)) if c in runs]
    columns = (
        ["trial.number"] * ("trial.number" in runs)
        + ["textclf.repeat_of"] * repeated
        + selection.varied
        + scores
        + ["status", "run_id"]
    )
    table = runs[list(dict.fromkeys(columns))].copy()
    table["group"] = comparability_groups(runs)
    if metric in table:
        rank = table["status"].map(STATUS_RANK).fillna(len(STATUS_RANK))
        table = (
            table.assign(_rank=rank)
            .sort_values(
                ["group", "_rank", metric],
                ascending=[True, True, direction == "minimize"],
                na_position="last",
                kind="stable",
            )
            .drop(columns="_rank")
        )
        table.insert(
            0,
            "best",
            np.where(
                best_configuration(runs, table["group"], metric, direction).reindex(table.index),
                "*",
                "",
            ),
        )
    if table["group"].nunique() <= 1:
        table = table.drop(columns="group")
    return table.reset_index(drop=True)


def best_configuration(
    runs: pd.DataFrame, groups: pd.Series, metric: str, direction: str
) -> pd.Series:
    """True on every run of each group's best configuration: the best finished run the study itself
    ran (seed repeats are evidence about a configuration, not rivals to it), and its repeats."""
    keys, groups = trial_keys(runs), groups.reindex(runs.index)
    finished = runs["status"] == "FINISHED"
    if "textclf.repeat_of" in runs:
        finished &= runs["textclf.repeat_of"].isna()
    scores = runs.loc[finished & runs[metric].notna(), metric].groupby(groups)
    best = scores.idxmax() if direction == "maximize" else scores.idxmin()
    chosen = {(group, keys[index]) for group, index in best.dropna().items()}
    return pd.Series(
        [(g, k) in chosen for g, k in zip(groups, keys, strict=False)], index=runs.index
    )


def trial_keys(runs: pd.DataFrame) -> pd.Series:
    """study:trial for each run (a repeat's trial is the one it repeats); the trial alone without a
    study tag; the run id for runs outside a sweep. One key is one configuration."""
    trial = (
        runs["textclf.repeat_of"].astype(object)
        if "textclf.repeat_of" in runs
        else pd.Series(None, index=runs.index, dtype=object)
    )
    if "trial.number" in runs:
        own = runs["trial.number"].map(lambda n: str(int(n)) if pd.notna(n) else None)
        trial = trial.where(trial.notna(), own)
    study = (
        runs["textclf.study"].fillna("")
        if "textclf.study" in runs
        else pd.Series("", index=runs.index)
    )
    keys = (study + ":").where(study != "", "") + trial.astype(str)
    return keys.where(trial.notna(), runs.get("run_id", keys))


def comparability_groups(runs: pd.DataFrame) -> pd.Series:
    """A group label per run: runs share one only if they were scored on the same evaluation rows
    (val + test, textclf.eval_fingerprint; the split fingerprint for runs older than it) with the
    same label map and epoch selection (textclf.monitor; untagged runs selected by val_loss, the
    only rule then). Runs without data (a trial whose config was rejected) belong to no group
    (NaN)."""
    empty = pd.Series(np.nan, index=runs.index, dtype=object)
    rows = runs.get("textclf.eval_fingerprint", empty).fillna(
        runs.get("textclf.split_fingerprint", empty)
    )
    labels = runs["data.label_map"] if "data.label_map" in runs else pd.Series("", index=runs.index)
    # what selected the epoch: with train.monitor=val_accuracy, best_val_accuracy is a maximum over
    # epochs
    monitor = (
        runs["textclf.monitor"].fillna("val_loss") if "textclf.monitor" in runs else "val_loss"
    )
    keys = rows.astype(str) + "|" + labels.fillna("").astype(str) + "|" + monitor
    keys = keys.mask(rows.isna() | (rows == ""))  # no fingerprint: in no group
    # the largest group is A
    order = sorted(keys.dropna().unique(), key=lambda k: -(keys == k).sum())
    return keys.map({k: chr(ord("A") + i) for i, k in enumerate(order)})


def comparability_note(runs: pd.DataFrame) -> str:
    groups = comparability_groups(runs).dropna()
    if groups.nunique() <= 1:
        return (
            "All runs share one set of evaluation rows (val + test) and label map: their "
            "metrics are comparable."
        )
    return (
        f"Runs fall into {groups.nunique()} groups ({', '.join(sorted(groups.unique()))}) "
        "scored on different evaluation rows or label maps: metrics compare only within a "
        "group, and each group has its own best row. (Expected when the study varies "
        "data.seed, the split sizes or data.split: subset.)"
    )


def write_tables(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "leaderboard.csv",
        "md": out / "leaderboard.md",
        "html": out / "leaderboard.html",
    }
    table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    paths["html"].write_text(table.to_html(index=False, float_format=lambda x: f"{x:.4g}"))
    return paths
