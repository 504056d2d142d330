"""The report's tables: the runs it covers, the leaderboard, comparability groups and seed noise.

Runs are read from MLflow (a sweep's parent run, the newest sweep of a study name, or a whole experiment)
into one pandas DataFrame, one row per run; the leaderboard is sorted by the study's objective with the
best row marked. Runs scored on different evaluation rows (val + test) or label maps are grouped, never
silently mixed; complete runs rank before pruned and failed ones.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from textclf.errors import InputError
from textclf.tracking import queries
from textclf.training.summary import DEFAULT_OBJECTIVE, HEADLINE_METRICS

IGNORED_PARAMS = ("tracking.", "trial.", "train.progress", "data.train_rows", "data.val_rows", "data.test_rows",
                  "train.effective_batch_size", "max_length", "truncation")


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
        objective = next(iter(json.loads(tags.get("study.objective", "{}")).items()), DEFAULT_OBJECTIVE)
        selection = Selection(f"study {tags.get('textclf.study', '?')} (parent run {run_id})",
                              queries.children(run_id, experiment), tuple(objective), run_id,
                              tags.get("study.storage"), tags.get("textclf.study"))
    else:
        runs = queries.experiment_runs(target)
        if runs is None:
            raise InputError([f"report: {target!r} is neither a run id, a study name nor an experiment in "
                              f"{queries.current_uri()}; pass --tracking-uri or one of those"])
        selection = Selection(f"experiment {target}", runs)
    if selection.runs.empty:
        raise InputError([f"report: {selection.title} has no runs yet"])
    selection.runs = _tidy(selection.runs)
    selection.varied = varied_params(selection.runs)
    return selection


def _tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """Columns without the `params.`/`metrics.`/`tags.` prefixes (tags keep theirs); numbers as numbers."""
    frame = pd.DataFrame({"run_id": runs["run_id"], "status": runs["status"]})
    for column in runs.columns:
        if column.startswith("params."):
            frame[column.removeprefix("params.")] = _maybe_numeric(runs[column])
        elif column.startswith("metrics."):
            frame[column.removeprefix("metrics.")] = runs[column]
        elif column in ("tags.textclf.split_fingerprint", "tags.textclf.eval_fingerprint", "tags.trial.state",
                        "tags.mlflow.runName", "tags.textclf.repeat_of", "tags.textclf.study",
                        "tags.textclf.monitor"):
            frame[column.removeprefix("tags.")] = runs[column]
    if "data.label_map" not in frame:
        frame["data.label_map"] = ""
    return frame.reset_index(drop=True)


def _maybe_numeric(column: pd.Series) -> pd.Series:
    converted = pd.to_numeric(column, errors="coerce")
    return converted if converted.notna().sum() == column.notna().sum() else column


def varied_params(runs: pd.DataFrame) -> list[str]:
    """Config params that take more than one value across the runs: what the study varied."""
    params = [c for c in runs.columns
              if re.fullmatch(r"(data|model|train)\.\w+", c) and not c.startswith(IGNORED_PARAMS)]
    return sorted(c for c in params if runs[c].astype(str).nunique(dropna=False) > 1)


STATUS_RANK = {"FINISHED": 0, "KILLED": 1, "FAILED": 2}  # complete, pruned or stopped, failed; then running


def leaderboard(selection: Selection) -> pd.DataFrame:
    """One row per run, the varied hyperparameters and the metrics people compare; complete runs first, each
    comparability group by the objective, the best finished run of each group marked."""
    runs = selection.runs
    metric, direction = selection.objective
    repeated = "textclf.repeat_of" in runs and bool(runs["textclf.repeat_of"].notna().any())
    # every score a run was selected or judged by, with its 95% interval over the evaluation rows beside it
    scores = [c for m in (metric, *HEADLINE_METRICS) for c in (m, f"{m}_ci_low", f"{m}_ci_high") if c in runs]
    columns = ["trial.number"] * ("trial.number" in runs) + ["textclf.repeat_of"] * repeated + selection.varied + \
        scores + ["status", "run_id"]
    table = runs[list(dict.fromkeys(columns))].copy()
    table["group"] = comparability_groups(runs)
    if metric in table:
        rank = table["status"].map(STATUS_RANK).fillna(len(STATUS_RANK))
        table = table.assign(_rank=rank).sort_values(["group", "_rank", metric],
                                                     ascending=[True, True, direction == "minimize"],
                                                     na_position="last", kind="stable").drop(columns="_rank")
        finished = table[table["status"] == "FINISHED"]
        best = finished.groupby("group")[metric].idxmax() if direction == "maximize" else \
            finished.groupby("group")[metric].idxmin()
        table.insert(0, "best", np.where(table.index.isin(best.dropna().values), "*", ""))
    if table["group"].nunique() <= 1:
        table = table.drop(columns="group")
    return table.reset_index(drop=True)


def comparability_groups(runs: pd.DataFrame) -> pd.Series:
    """A group label per run: runs share one only if they were scored on the same evaluation rows (val + test,
    textclf.eval_fingerprint; the split fingerprint for runs older than it) with the same label map and epoch
    selection (textclf.monitor; untagged runs selected by val_loss, the only rule then). Runs
    without data (a trial whose config was rejected) belong to no group (NaN)."""
    empty = pd.Series(np.nan, index=runs.index, dtype=object)
    rows = runs.get("textclf.eval_fingerprint", empty).fillna(runs.get("textclf.split_fingerprint", empty))
    labels = runs["data.label_map"] if "data.label_map" in runs else pd.Series("", index=runs.index)
    # what selected the epoch: with train.monitor=val_accuracy, best_val_accuracy is a maximum over epochs
    monitor = runs["textclf.monitor"].fillna("val_loss") if "textclf.monitor" in runs else "val_loss"
    keys = rows.astype(str) + "|" + labels.fillna("").astype(str) + "|" + monitor
    keys[rows.isna() | (rows == "")] = np.nan
    order = sorted(keys.dropna().unique(), key=lambda k: -(keys == k).sum())  # the largest group is A
    return keys.map({k: chr(ord("A") + i) for i, k in enumerate(order)})


def comparability_note(runs: pd.DataFrame) -> str:
    groups = comparability_groups(runs).dropna()
    if groups.nunique() <= 1:
        return ("All runs share one set of evaluation rows (val + test) and label map: their metrics are "
                "comparable.")
    return (f"Runs fall into {groups.nunique()} groups ({', '.join(sorted(groups.unique()))}) scored on different "
            f"evaluation rows or label maps: metrics compare only within a group, and each group has its own best "
            f"row. (Expected when the study varies data.seed, the split sizes or data.split: subset.)")


def seed_noise(runs: pd.DataFrame, metric: str, direction: str, alpha: float = 0.05) -> pd.DataFrame | None:
    """Mean and spread of `metric` over the fresh seeds of each repeated configuration (`--repeat-best`), keyed
    by study and trial. The run a configuration was selected by is left out of its mean (`selected_value`):
    picking the best of many runs favours a lucky one. One verdict per comparability group, on the leader's lead
    over the runner-up (_noise_verdict): beyond seed noise (Welch's t test, calibrated) and, for accuracy
    metrics, beyond the row sampling of the validation rows (200-500 rows: 2-3 points that seeds never show,
    since every seed is scored on the same rows). docs/methodology.md."""
    if "textclf.repeat_of" not in runs or runs["textclf.repeat_of"].isna().all():
        return None
    done = runs[runs["status"] == "FINISHED"].assign(group=comparability_groups(runs), key=_trial_keys(runs))
    repeats = done[done["textclf.repeat_of"].notna()]
    by = repeats.groupby(repeats["key"])
    stats = by[metric].agg(["count", "mean", "std"])
    stats["group"] = by["group"].first()
    if "data.val_rows" in repeats and "accuracy" in metric:
        stats["val_rows"] = by["data.val_rows"].first()
    originals = done[done["trial.number"].notna() & done["textclf.repeat_of"].isna()] if "trial.number" in done \
        else done.iloc[:0]
    selected = originals.drop_duplicates("key").set_index("key")[metric]  # a resumed trial may log twice
    stats["selected_value"] = selected.reindex(stats.index)
    stats = stats[stats["count"] > 1].sort_values("mean", ascending=direction == "minimize")
    stats["note"] = ""
    for _, members in stats.groupby(stats["group"].fillna("-"), sort=False):
        if len(members) >= 2:
            stats.loc[members.index[0], "note"] = _noise_verdict(members.iloc[0], members.iloc[1], alpha)
    if stats["group"].nunique() <= 1:
        stats = stats.drop(columns="group")
    return stats


def _trial_keys(runs: pd.DataFrame) -> pd.Series:
    """study:trial for each run (a repeat's trial is the one it repeats); the trial alone without a study tag."""
    trial = runs["textclf.repeat_of"].astype(object)
    if "trial.number" in runs:
        own = runs["trial.number"].map(lambda n: str(int(n)) if pd.notna(n) else None)
        trial = trial.where(trial.notna(), own)
    study = runs["textclf.study"].fillna("") if "textclf.study" in runs else pd.Series("", index=runs.index)
    return (study + ":").where(study != "", "") + trial.astype(str)


def _noise_verdict(lead: pd.Series, next_: pd.Series, alpha: float) -> str:
    """Two readings of the lead. Seeds: Welch's t test of the two means over their fresh seeds, with Welch's
    degrees of freedom (two seeds each give about 2; the old rule, lead > 2 standard errors, said "larger" 18%
    of the time for identical configurations). Rows: the lead against the sampling noise of the validation rows
    alone (accuracy metrics: p(1 - p) / rows per mean, summed: the bound for two models that err on different
    rows). "larger than noise" needs both: retraining would not reorder them, and neither would new rows."""
    from scipy import stats as scipy_stats

    seed = [row["std"] ** 2 / row["count"] for row in (lead, next_)]
    gap = abs(lead["mean"] - next_["mean"])
    if sum(seed) <= 0 or any(pd.isna(v) for v in seed):
        seeds, beyond_seeds = "no spread over seeds (repeat with more seeds)", False
    else:
        df = sum(seed) ** 2 / sum(v ** 2 / (row["count"] - 1) for v, row in zip(seed, (lead, next_)))
        t = gap / np.sqrt(sum(seed))
        p = float(2 * scipy_stats.t.sf(t, df))
        beyond_seeds = p < alpha
        seeds = f"seeds: Welch t = {t:.2f}, df {df:.1f}, p = {p:.3g}, {'beyond' if beyond_seeds else 'within'} " \
                f"seed noise"
    text, beyond_rows = f"lead {gap:.4f}; {seeds}", True
    if pd.notna(lead.get("val_rows")) and pd.notna(next_.get("val_rows")):
        row_se = float(np.sqrt(sum(r["mean"] * (1 - r["mean"]) / r["val_rows"] for r in (lead, next_))))
        beyond_rows = gap > scipy_stats.norm.isf(alpha / 2) * row_se
        text += f"; rows: se {row_se:.4f} from {int(lead['val_rows'])} validation rows, " \
                f"{'beyond' if beyond_rows else 'within'} row sampling noise"
    verdict = "larger than noise" if beyond_seeds and beyond_rows else "within noise"
    return f"{text}: {verdict} at {alpha:g}"


def write_tables(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "leaderboard.csv", "md": out / "leaderboard.md", "html": out / "leaderboard.html"}
    table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    paths["html"].write_text(table.to_html(index=False, float_format=lambda x: f"{x:.4g}"))
    return paths
