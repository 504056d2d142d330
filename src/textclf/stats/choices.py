"""Which model is best, decided in one place from plain values: a trial at least as good as another
on every objective, the Pareto front, and whether a registered version takes the alias `champion`
from the one holding it. The callers read and write MLflow and Optuna (studies/best_models.py,
studies/study.py, tracking/registry.py); nothing here does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from textclf.stats import paired, rows

# objectives with a per-row paired test on the validation rows each run saves
PAIRED = {"best_val_accuracy": "accuracy", "best_val_loss": "loss"}
# version tag: how many models (a sweep's complete and pruned trials on the same rows) it was
# selected among; the champion test corrects for them
SELECTED_FROM = "textclf.selected_from"
# what must agree for two versions to be rivals: the same objective, rows and epoch selection
RIVALRY = ("textclf.objective", "textclf.direction", "textclf.eval_fingerprint")

Values = Sequence[float]


def at_least_as_good(theirs: Values, mine: Values, signs: Sequence[int]) -> bool:
    """`theirs` is at least as good as `mine` on every objective (sign +1: maximise, -1: minimise),
    so `mine` is no new best."""
    return all(s * t >= s * m for s, t, m in zip(signs, theirs, mine, strict=True))


def pareto_front(values: list[Values], signs: Sequence[int]) -> list[int]:
    """The indices of the values no other one dominates (at least as good everywhere, and other)."""
    return [
        i
        for i, v in enumerate(values)
        if not any(at_least_as_good(o, v, signs) and list(o) != list(v) for o in values)
    ]


def rivals(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Two versions may face each other: same objective and direction, scored on the same rows,
    their epochs selected by the same train.monitor (untagged: val_loss, the only rule then)."""
    same_monitor = theirs.get("textclf.monitor", "val_loss") == mine.get(
        "textclf.monitor", "val_loss"
    )
    return same_monitor and all(theirs.get(k) == mine.get(k) for k in RIVALRY)


def champion_decision(
    mine: dict[str, str],
    theirs: dict[str, str],
    test: str,
    alpha: float,
    frames: Callable[[], tuple[pd.DataFrame | None, pd.DataFrame | None]],
) -> tuple[bool, str, str | None]:
    """Whether the challenger (version tags `mine`) takes the alias from the champion (`theirs`),
    the reason in words, and the paired test's text to tag on the challenger (None for the value
    rule). test=paired, for objectives with a per-row test: one-sided at alpha / the candidates
    the challenger was selected among (SELECTED_FROM), on both versions' saved validation rows
    (`frames()` reads them: champion's, challenger's); else (or test=value) any strict improvement
    of the objective value."""
    if test == "paired" and mine.get("textclf.objective") in PAIRED:
        wins, said = _paired(mine, *frames(), alpha)
        return wins, said, said
    sign = 1 if mine.get("textclf.direction") == "maximize" else -1
    wins = sign * float(mine["textclf.objective_value"]) > sign * float(
        theirs["textclf.objective_value"]
    )
    return (
        wins,
        f"by value: {mine['textclf.objective_value']} vs {theirs['textclf.objective_value']}",
        None,
    )


def _paired(
    mine: dict[str, str], held: pd.DataFrame | None, challenger: pd.DataFrame | None, alpha: float
) -> tuple[bool, str]:
    if held is None or challenger is None:
        who = "the champion" if held is None else "it"
        return False, (
            f"no per-row validation predictions for {who} (logged before textclf "
            "saved them): not compared; move the alias by hand if you mean it"
        )
    try:
        champion, challenger = rows.paired(held, challenger)
    except ValueError as e:
        return False, f"not compared: {e}"
    metric = PAIRED[mine["textclf.objective"]]
    held_scores, new_scores = (
        (f.prediction.to_numpy() for f in (champion, challenger))
        if metric == "accuracy"
        else (rows.row_losses(f) for f in (champion, challenger))
    )
    candidates = int(mine.get(SELECTED_FROM, "1") or 1)
    wins, said = paired.challenger_wins(
        metric, champion.label.to_numpy(), held_scores, new_scores, alpha, candidates
    )
    return wins, f"paired on {len(champion)} validation rows: {said}"
