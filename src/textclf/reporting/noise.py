"""Seed noise in a report: the spread of each repeated configuration over its fresh seeds (`textclf
sweep --repeat-best`), and whether the leader's lead over the runner-up is beyond that noise and
beyond the row sampling of the validation rows (docs/methodology.md)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from textclf.reporting.tables import comparability_groups


def seed_noise(runs: pd.DataFrame, metric: str, direction: str,
               alpha: float = 0.05) -> pd.DataFrame | None:
    """Mean and spread of `metric` over the fresh seeds of each repeated configuration
    (`--repeat-best`), keyed by study and trial. The run a configuration was selected by is left out
    of its mean (`selected_value`): picking the best of many runs favours a lucky one. One verdict
    per comparability group, on the leader's lead over the runner-up (_noise_verdict): beyond seed
    noise (Welch's t test, calibrated) and, for accuracy metrics, beyond the row sampling of the
    validation rows (200-500 rows: 2-3 points that seeds never show, since every seed is scored on
    the same rows). docs/methodology.md."""
    if "textclf.repeat_of" not in runs or runs["textclf.repeat_of"].isna().all():
        return None
    done = runs[runs["status"] == "FINISHED"].assign(group=comparability_groups(runs),
                                                     key=_trial_keys(runs))
    repeats = done[done["textclf.repeat_of"].notna()]
    by = repeats.groupby(repeats["key"])
    stats = by[metric].agg(["count", "mean", "std"])
    stats["group"] = by["group"].first()
    if "data.val_rows" in repeats and "accuracy" in metric:
        stats["val_rows"] = by["data.val_rows"].first()
    originals = (
        done[done["trial.number"].notna() & done["textclf.repeat_of"].isna()]
        if "trial.number" in done
        else done.iloc[:0]
    )
    # a resumed trial may log twice
    selected = originals.drop_duplicates("key").set_index("key")[metric]
    stats["selected_value"] = selected.reindex(stats.index)
    stats = stats[stats["count"] > 1].sort_values("mean", ascending=direction == "minimize")
    stats["note"] = ""
    for _, members in stats.groupby(stats["group"].fillna("-"), sort=False):
        if len(members) >= 2:
            stats.loc[members.index[0], "note"] = _noise_verdict(members.iloc[0], members.iloc[1],
                                                                 alpha)
    if stats["group"].nunique() <= 1:
        stats = stats.drop(columns="group")
    return stats


def _trial_keys(runs: pd.DataFrame) -> pd.Series:
    """study:trial for each run (a repeat's trial is the one it repeats); the trial alone without a
    study tag."""
    trial = runs["textclf.repeat_of"].astype(object)
    if "trial.number" in runs:
        own = runs["trial.number"].map(lambda n: str(int(n)) if pd.notna(n) else None)
        trial = trial.where(trial.notna(), own)
    study = (
        runs["textclf.study"].fillna("")
        if "textclf.study" in runs
        else pd.Series("", index=runs.index)
    )
    return (study + ":").where(study != "", "") + trial.astype(str)


def _noise_verdict(lead: pd.Series, next_: pd.Series, alpha: float) -> str:
    """Two readings of the lead. Seeds: Welch's t test of the two means over their fresh seeds, with
    Welch's degrees of freedom (two seeds each give about 2; the old rule, lead > 2 standard errors,
    said "larger" 18% of the time for identical configurations). Rows: the lead against the sampling
    noise of the validation rows alone (accuracy metrics: p(1 - p) / rows per mean, summed: the
    bound for two models that err on different rows). "larger than noise" needs both: retraining
    would not reorder them, and neither would new rows."""
    from scipy import stats as scipy_stats

    seed = [row["std"] ** 2 / row["count"] for row in (lead, next_)]
    gap = abs(lead["mean"] - next_["mean"])
    if sum(seed) <= 0 or any(pd.isna(v) for v in seed):
        seeds, beyond_seeds = "no spread over seeds (repeat with more seeds)", False
    else:
        df = sum(seed) ** 2 / sum(v ** 2 / (row["count"] - 1) for v, row in zip(seed, (lead,
                                                                                       next_)))
        t = gap / np.sqrt(sum(seed))
        p = float(2 * scipy_stats.t.sf(t, df))
        beyond_seeds = p < alpha
        seeds = (
            f"seeds: Welch t = {t:.2f}, df {df:.1f}, p = {p:.3g}, "
            f"{'beyond' if beyond_seeds else 'within'} seed noise"
        )
    text, beyond_rows = f"lead {gap:.4f}; {seeds}", True
    if pd.notna(lead.get("val_rows")) and pd.notna(next_.get("val_rows")):
        row_se = float(np.sqrt(sum(r["mean"] * (1 - r["mean"]) / r["val_rows"] for r in (lead,
                                                                                         next_))))
        beyond_rows = gap > scipy_stats.norm.isf(alpha / 2) * row_se
        text += f"; rows: se {row_se:.4f} from {int(lead['val_rows'])} validation rows, " \
                f"{'beyond' if beyond_rows else 'within'} row sampling noise"
    verdict = "larger than noise" if beyond_seeds and beyond_rows else "within noise"
    return f"{text}: {verdict} at {alpha:g}"
