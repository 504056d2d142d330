"""`textclf report`: the comparison tables and plots users used to build by hand after every
sweep, written to reports/<name>/ (CSV, Markdown, HTML, PNG, report.md) and attached to the
sweep's parent run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from textclf.pathnames import as_path_part
from textclf.reporting import plots, scaling
from textclf.reporting.noise import seed_noise
from textclf.reporting.tables import (
    Selection,
    comparability_groups,
    comparability_note,
    leaderboard,
    write_tables,
)
from textclf.tracking import queries, sweep_runs


@dataclass(frozen=True)
class Report:
    path: Path  # report.md
    table: pd.DataFrame  # the leaderboard
    attached_to: str | None  # the sweep parent run it was attached to
    # what the command prints under the table (the data-scaling fits)
    readings: tuple[str, ...] = ()


def make_report(
    target: str,
    selection: Selection,
    views: tuple[list, list[str]],
    output: str | None = None,
    attach: bool = True,
) -> Report:
    """The report of `target` (a sweep's parent run id, a study name or an experiment name: its runs
    `selection`), with Optuna's `views` of the study behind it (studies/views.py)."""
    out = Path(output or Path("reports") / as_path_part(selection.study_name or target))
    path, table, readings = build_report(selection, out, views)
    attached = selection.parent_run_id if attach and selection.parent_run_id else None
    if attached:
        sweep_runs.attach_report(attached, out)
    return Report(path, table, attached, tuple(readings))


def build_report(
    selection: Selection, out: Path, views: tuple[list, list[str]] | None = None
) -> tuple[Path, pd.DataFrame, list[str]]:
    """Tables (CSV, Markdown, HTML), the plots the runs call for, and report.md tying them together;
    returns its path, the leaderboard and the data-scaling readings (one line per fitted or skipped
    set of runs)."""
    metric = selection.objective[0]
    table = leaderboard(selection)
    write_tables(table, out)
    lines = [
        f"# Report: {selection.title}",
        "",
        comparability_note(selection.runs),
        "",
        f"Sorted by `{metric}` ({selection.objective[1]}); `*` marks the best finished run"
        + (" of each group." if "group" in table else "."),
        "",
        table.drop(columns=["run_id"]).to_markdown(index=False, floatfmt=".4g"),
        "",
    ]
    groups = comparability_groups(selection.runs)
    fits, skipped = scaling.fit_all(
        selection.runs,
        metric,
        selection.objective[1],
        selection.varied,
        groups,
        rows_of=validation_rows,
    )
    figures, notes = draw(selection, views, fits, groups)
    if fits or skipped:
        lines += ["## Data scaling", "", *scaling.as_markdown(fits, skipped), ""]
    noise = seed_noise(selection.runs, metric, selection.objective[1])
    if noise is not None:
        lines += ["## Seed noise", "", noise.to_markdown(floatfmt=".4g"), ""]
    lines += ["## Plots", ""]
    for name, fig in figures:
        fig.savefig(out / f"{name}.png", dpi=110)
        plots.plt.close(fig)
        lines += [f"![{name}]({name}.png)", ""]
    lines += [f"- {n}" for n in notes if n.startswith("skipped")]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    readings = [
        f"data scaling, {f.label}: {f.reading} (b = {f.params['b'][0]:.3g} "
        f"[{f.params['b'][1]:.3g}, "
        f"{f.params['b'][2]:.3g}])"
        for f in fits
    ] + [f"data scaling, {line}" for line in skipped]
    return out / "report.md", table, readings


def draw(
    selection: Selection, views: tuple[list, list[str]] | None, fits: list, groups: pd.Series
) -> tuple[list, list[str]]:
    """(named figures, a note per plot: drawn or why it was skipped); `groups`:
    comparability_groups(runs); `views`: Optuna's figures of the study and their notes
    (studies/views.py), None without a study."""
    (metric, direction), runs = selection.objective, selection.runs
    # heatmap cells and Pareto fronts compare runs: only those scored on the same rows (the largest
    # group, A)
    same = runs[groups == "A"] if groups.nunique() > 1 else runs
    drawn = [("heatmap_length_lr", *plots.heatmap_length_lr(same, metric))]
    drawn.append(
        ("data_scaling", *plots.data_scaling(runs, metric, fits, groups, tuple(selection.varied)))
    )
    drawn.append(("accuracy_vs_time", *plots.pareto(same, metric, "train_time_s", direction)))
    if "model.freeze" in selection.varied or "model.peft" in selection.varied:
        drawn.append(
            (
                "accuracy_vs_trainable_params",
                *plots.pareto(same, metric, "trainable_params", direction),
            )
        )
    # drawn where the runs logged peak GPU memory (runs on a GPU); a note says why not otherwise
    drawn.append(
        ("accuracy_vs_gpu_memory", *plots.pareto(same, metric, "peak_gpu_mem_mb", direction))
    )
    drawn.append(("loss_curves", *plots.loss_curves(load_histories(runs))))
    notes = [note for _, _, note in drawn]
    if len(same) < len(runs):
        notes.append(
            f"heatmap and Pareto plots: group A only ({len(same)} of {len(runs)} runs); "
            "the other groups were scored on other rows"
        )
    figures, view_notes = views or (
        [],
        ["skipped Optuna importances / parallel coordinates: no study"],
    )
    drawn += [(f"optuna_{name}", f, "") for name, f in figures]
    notes += view_notes + [f"optuna {name}" for name, _ in figures]
    return [(name, fig) for name, fig, _ in drawn if fig is not None], notes


def validation_rows(run_id: str) -> pd.DataFrame | None:
    """A run's per-row validation predictions (the selected epoch's), None for runs without."""
    from textclf.tracking import predictions

    return predictions.load(run_id, "val")


def load_histories(runs: pd.DataFrame, limit: int = 40) -> dict[str, pd.DataFrame]:
    """Per-epoch train/val loss of up to `limit` finished runs, keyed by a short label."""
    out = {}
    for _, row in runs[runs["status"] == "FINISHED"].head(limit).iterrows():
        series = {
            key: queries.metric_history(row["run_id"], key) for key in ("train_loss", "val_loss")
        }
        if series["val_loss"]:
            label = (
                f"trial {int(row['trial.number'])}"
                if pd.notna(row.get("trial.number"))
                else row["run_id"][:8]
            )
            out[label] = pd.DataFrame(series).sort_index()
    return out
