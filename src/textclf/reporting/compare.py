"""`textclf compare A B`: two questions, two answers (docs/methodology.md, "Comparisons").

- One run a side: are these two trained models different on these rows? A paired test on the rows
  (stats/paired.py). Its answer is about the two models: two seeds of one configuration differ on
  these rows just as often, so it says nothing about the configurations.
- Several runs a side (comma-separated, each side one configuration over several train.seed values):
  is configuration B better than configuration A? A t test whose unit is the seed, with the rows'
  paired noise inside it (stats/seeds.py).

One primary test decides: the metric of the runs' objective (best_val_accuracy: accuracy,
best_val_loss: loss; `metric` overrides). The other metrics are secondary, with Holm-adjusted
p-values, and never change the verdict. Runs scored on other rows are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from textclf.errors import InputError
from textclf.reporting.verdicts import verdict
from textclf.stats import intervals, paired, rows, seeds
from textclf.tracking import predictions
from textclf.training.summary import DEFAULT_OBJECTIVE

ALPHA = 0.05
METRICS = ("accuracy", "f1", "loss")
# the objective -> the per-row test that answers for it
PRIMARY = {"best_val_accuracy": "accuracy", "best_val_loss": "loss"}
# params that may differ between the runs of one configuration
NOT_CONFIGURATION = ("train.seed", "tracking.", "trial.", "repeat.", "max_length", "truncation")


@dataclass(frozen=True)
class Side:
    name: str  # A or B
    runs: list[predictions.Scored]
    frames: list[pd.DataFrame]  # each run's rows, in one row order shared by every run


def compare(
    a: str, b: str, split: str = "val", level: float = 0.95, metric: str | None = None
) -> dict:
    """What the command prints, as a JSON-ready dict."""
    return judge(_aligned([_read(a, "A", split), _read(b, "B", split)]), split, level, metric)


def judge(sides: list[Side], split: str, level: float = 0.95, metric: str | None = None) -> dict:
    """The comparison of two sides read and aligned (no MLflow from here on)."""
    kind = _kind(sides)
    primary, reason = primary_metric(metric, sides)
    labels = sides[0].frames[0].label.to_numpy()
    k = len(sides[0].frames[0].probabilities.iloc[0])
    measured = (_models if kind == "models" else _configurations)(sides, labels, k, level)
    comparisons = _roles(measured, primary)
    first = sides[0].runs[0]
    return {
        **{s.name.lower(): _describe(s, labels, k, level) for s in sides},
        "split": split,
        "rows": len(labels),
        "eval_fingerprint": first.eval_fingerprint,
        "level": level,
        "alpha": ALPHA,
        "primary": primary,
        "primary_reason": reason,
        "comparisons": comparisons,
        "verdict": verdict(kind, comparisons, ALPHA, split),
    }


def primary_metric(metric: str | None, sides: list[Side]) -> tuple[str, str]:
    """(the metric that decides, why it was chosen)."""
    if metric:
        return metric, "chosen with --metric"
    objective = next(
        (r.objective for s in sides for r in s.runs if r.objective), DEFAULT_OBJECTIVE[0]
    )
    if objective in PRIMARY:
        return PRIMARY[objective], f"the runs' objective is {objective}"
    return "accuracy", f"the runs' objective {objective} has no per-row test: accuracy decides"


def _read(reference: str, name: str, split: str) -> list[predictions.Scored]:
    parts = [p.strip() for p in reference.split(",")]
    if not all(parts):
        raise InputError(
            [
                f"{name}: {reference!r} has an empty run reference; separate runs with "
                "commas, no empty entries"
            ]
        )
    return [predictions.scored(p, split, name) for p in parts]


def _aligned(sides: list[list[predictions.Scored]]) -> list[Side]:
    """Every run's rows in the first run's order; InputError if any run was scored on other rows."""
    base = sides[0][0]
    out = []
    for name, runs in zip("AB", sides, strict=False):
        frames = []
        for run in runs:
            if run.eval_fingerprint != base.eval_fingerprint:
                raise InputError(
                    [
                        f"{name}: {run.reference} and A: {base.reference} were scored on "
                        f"different rows (eval fingerprints {run.eval_fingerprint or '?'} "
                        f"and {base.eval_fingerprint or '?'}): a paired comparison needs "
                        "the same validation and test rows; compare runs with the same "
                        "data settings (data.name, seed, fractions)"
                    ]
                )
            try:
                frames.append(rows.paired(base.frame, run.frame)[1])
            except ValueError as e:
                raise InputError([f"{name}: {run.reference}: {e}"]) from None
        out.append(Side(name, runs, frames))
    return out


def _kind(sides: list[Side]) -> str:
    counts = [len(s.runs) for s in sides]
    if counts == [1, 1]:
        return "models"
    if min(counts) < 2:
        raise InputError(
            [
                f"A has {counts[0]} run(s) and B {counts[1]}: a configuration comparison "
                "needs at least 2 runs (seeds) a side, 3 or more for useful power; give "
                "one run a side to compare two trained models"
            ]
        )
    ids = [r.run_id for s in sides for r in s.runs]
    if len(set(ids)) < len(ids):
        raise InputError(["A and B: a run is given twice; each run is one seed of one side"])
    for side in sides:
        _one_configuration(side)
    return "configurations"


def _one_configuration(side: Side) -> None:
    """Every run of a side has the first's config but its own train.seed."""

    def config(run):
        return {k: v for k, v in run.params.items() if not k.startswith(NOT_CONFIGURATION)}

    first = side.runs[0]
    for run in side.runs[1:]:
        differ = sorted(
            k
            for k in config(first).keys() | config(run).keys()
            if config(first).get(k) != config(run).get(k)
        )
        if differ:
            key = differ[0]
            raise InputError(
                [
                    f"{side.name}: runs {first.run_id[:8]} and {run.run_id[:8]} differ in "
                    f"{', '.join(differ[:3])} ({config(first).get(key)} vs "
                    f"{config(run).get(key)}): a side is one configuration over several "
                    "train.seed values"
                ]
            )
    seeds_seen = [r.params.get("train.seed") for r in side.runs]
    if len(set(seeds_seen)) < len(seeds_seen):
        raise InputError(
            [
                f"{side.name}: two runs share train.seed {seeds_seen}: one seed trained "
                "twice is not a new draw; give runs of different seeds"
            ]
        )


def _models(sides: list[Side], labels: np.ndarray, k: int, level: float) -> list:
    (fa,), (fb,) = (s.frames for s in sides)
    pa, pb = fa.prediction.to_numpy(), fb.prediction.to_numpy()
    return [
        paired.accuracy(labels, pa, pb, level),
        paired.f1(labels, pa, pb, k, level),
        paired.loss(rows.row_losses(fa), rows.row_losses(fb), level),
    ]


def _configurations(sides: list[Side], labels: np.ndarray, k: int, level: float) -> list:
    a, b = sides  # seeds x rows per side
    pa, pb = (np.stack([f.prediction.to_numpy() for f in s.frames]) for s in (a, b))
    la, lb = (np.stack([rows.row_losses(f) for f in s.frames]) for s in (a, b))
    right_a, right_b = (pa == labels).astype(float), (pb == labels).astype(float)
    return [
        seeds.mean_scores("accuracy", right_a, right_b, level),
        seeds.f1_scores_over_seeds(labels, pa, pb, k, level),
        seeds.mean_scores("loss", la, lb, level),
    ]


def _roles(measured: list, primary: str) -> list[dict]:
    """Each comparison as a dict with its role; the secondaries' p-values Holm-adjusted."""
    out = [
        {**m.as_dict(), "role": "primary" if m.metric == primary else "secondary"} for m in measured
    ]
    if isinstance(measured[0], seeds.SeedComparison):
        main = next(m for m in measured if m.metric == primary)
        out = [
            {**c, "detectable": main.detectable(ALPHA)} if c["role"] == "primary" else c
            for c in out
        ]
    secondary = [c for c in out if c["role"] == "secondary"]
    for c, adjusted in zip(secondary, paired.holm([c["p_value"] for c in secondary]), strict=False):
        c["p_holm"] = adjusted
    return sorted(out, key=lambda c: c["role"] != "primary")


def _describe(side: Side, labels: np.ndarray, k: int, level: float) -> dict:
    """One side as the output names it: its run(s) and, for one run, its score intervals."""
    runs = [
        {
            "reference": r.reference,
            "run_id": r.run_id,
            "name": r.name,
            "seed": r.params.get("train.seed"),
        }
        for r in side.runs
    ]
    if len(runs) > 1:
        return {"runs": runs, "name": f"{len(runs)} seeds of {runs[0]['name']}"}
    predicted = side.frames[0].prediction.to_numpy()
    return {**runs[0], "intervals": intervals.score_intervals(labels, predicted, k, level)}
