"""Seed noise in a report: the spread of each repeated configuration over its fresh seeds (`textclf
sweep --repeat-best`), and whether the leader's lead over the runner-up is larger than noise: the
configuration test of stats/seeds.py on the runs' stored per-row predictions (the seeds and the
validation rows, paired), with the lead it could have found; runs without per-row predictions
(logged before textclf saved them) get the older, conservative reading (docs/methodology.md)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from textclf.reporting.tables import comparability_groups, trial_keys
from textclf.stats import rows as row_tables
from textclf.stats import seeds

RowsOf = Callable[[str], "pd.DataFrame | None"]  # a run id -> its validation predictions


def seed_noise(
    runs: pd.DataFrame,
    metric: str,
    direction: str,
    alpha: float = 0.05,
    rows_of: RowsOf | None = None,
) -> pd.DataFrame | None:
    """Mean and spread of `metric` over the fresh seeds of each repeated configuration
    (`--repeat-best`), keyed by study and trial. The run a configuration was selected by is left out
    of its mean (`selected_value`): picking the best of many runs favours a lucky one. One verdict
    per comparability group, on the leader's lead over the runner-up (_noise_verdict). `rows_of`
    reads a run's per-row validation predictions (default: from MLflow)."""
    if "textclf.repeat_of" not in runs or runs["textclf.repeat_of"].isna().all():
        return None
    done = runs[runs["status"] == "FINISHED"].assign(
        group=comparability_groups(runs), key=trial_keys(runs)
    )
    repeats = done[done["textclf.repeat_of"].notna()]
    by = repeats.groupby(repeats["key"])
    stats = by[metric].agg(["count", "mean", "std"])
    stats["group"] = by["group"].first()
    if "data.val_rows" in repeats and "accuracy" in metric:
        stats["val_rows"] = by["data.val_rows"].first()
    run_ids = by["run_id"].agg(list) if "run_id" in repeats else None
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
            pair = [members.index[0], members.index[1]]
            frames = _frames(run_ids, pair, rows_of) if run_ids is not None else None
            stats.loc[pair[0], "note"] = (
                _paired_verdict(metric, frames, alpha)
                if frames
                else _noise_verdict(members.iloc[0], members.iloc[1], alpha)
            )
    if stats["group"].nunique() <= 1:
        stats = stats.drop(columns="group")
    return stats


def _frames(run_ids: pd.Series, pair: list[str], rows_of: RowsOf | None):
    """Each configuration's fresh-seed runs' validation predictions, aligned row by row; None when
    any run has none (logged before textclf saved them)."""
    if rows_of is None:
        from textclf.tracking import predictions

        rows_of = lambda run_id: predictions.load(run_id, "val")  # noqa: E731
    loaded = [[rows_of(run_id) for run_id in run_ids[key]] for key in pair]
    sides = [[f for f in side if f is not None] for side in loaded]
    if [len(s) for s in sides] != [len(s) for s in loaded]:  # a run without predictions
        return None
    base = sides[0][0]
    try:
        return [[row_tables.paired(base, f)[1] for f in side] for side in sides]
    except ValueError:
        return None


def _paired_verdict(metric: str, frames: list[list[pd.DataFrame]], alpha: float) -> str:
    """The configuration test (stats/seeds.py) of the runner-up (A) against the leader (B) on their
    fresh seeds and the validation rows, paired; with the lead it could have found."""
    labels = frames[0][0].label.to_numpy()
    if "accuracy" in metric:
        values = [np.stack([(f.prediction.to_numpy() == labels) for f in side]) for side in frames]
        kind = "accuracy"
    elif "loss" in metric:
        values = [np.stack([row_tables.row_losses(f) for f in side]) for side in frames]
        kind = "loss"
    else:
        return f"no per-row test for {metric}: compare the means and spreads"
    out = seeds.mean_scores(kind, values[1], values[0])  # B = the leader
    verdict = "larger than noise" if out.better(alpha) == "b" else "within noise"
    return (
        f"lead {abs(out.difference):.4f}; paired over {out.seeds_a} and {out.seeds_b} fresh "
        f"seeds and {out.n} validation rows: t test p = {out.p_value:.3g}, df {out.df:.1f} (se "
        f"from seeds {out.seed_se:.4f}, from rows {out.row_se:.4f}); a lead of "
        f"{out.detectable(alpha):.4f} "
        f"would be found with probability 0.8: {verdict} at {alpha:g}"
    )


def _noise_verdict(lead: pd.Series, next_: pd.Series, alpha: float) -> str:
    """Without per-row predictions: seeds by Welch's t test of the two means over their fresh seeds
    (Welch's degrees of freedom: two seeds each give about 2), rows by the lead against the
    validation rows' sampling noise for two models that err on different rows (p(1 - p) / rows per
    mean, summed: a conservative bound). "larger than noise" needs both."""
    from scipy import stats as scipy_stats

    seed = [row["std"] ** 2 / row["count"] for row in (lead, next_)]
    gap = abs(lead["mean"] - next_["mean"])
    if sum(seed) <= 0 or any(pd.isna(v) for v in seed):
        seeds_said, beyond_seeds = "no spread over seeds (repeat with more seeds)", False
    else:
        df = sum(seed) ** 2 / sum(
            v**2 / (row["count"] - 1) for v, row in zip(seed, (lead, next_), strict=False)
        )
        t = gap / np.sqrt(sum(seed))
        p = float(2 * scipy_stats.t.sf(t, df))
        beyond_seeds = p < alpha
        seeds_said = (
            f"seeds: Welch t = {t:.2f}, df {df:.1f}, p = {p:.3g}, "
            f"{'beyond' if beyond_seeds else 'within'} seed noise"
        )
    text, beyond_rows = f"lead {gap:.4f}; {seeds_said}", True
    if pd.notna(lead.get("val_rows")) and pd.notna(next_.get("val_rows")):
        row_se = float(
            np.sqrt(sum(r["mean"] * (1 - r["mean"]) / r["val_rows"] for r in (lead, next_)))
        )
        beyond_rows = gap > scipy_stats.norm.isf(alpha / 2) * row_se
        text += (
            f"; rows: se {row_se:.4f} from {int(lead['val_rows'])} validation rows (no "
            f"per-row predictions: the bound for models that err on different rows), "
            f"{'beyond' if beyond_rows else 'within'} row sampling noise"
        )
    verdict = "larger than noise" if beyond_seeds and beyond_rows else "within noise"
    return f"{text}: {verdict} at {alpha:g}"
