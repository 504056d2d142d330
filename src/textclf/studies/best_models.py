"""Which trials keep their model (study.keep_models), and how the best trial's model enters the
Model Registry.

best (default): a trial logs its model only when it beats every complete trial so far on the same
evaluation rows (single objective) or no such trial dominates it (several objectives); once a better
trial on the same rows completes, the superseded models are deleted. Disk holds about one model per
worker (per set of rows). all: every trial keeps its model. none: no trial does. At the end of a
sweep with tracking.register_as, the best trial on the base config's evaluation rows becomes a new
version of that name, and the alias `champion` moves to it only when it beats the champion
(registry.promote: a paired test on the same validation rows by default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import optuna

from textclf.config import TrackingConfig
from textclf.stats.choices import at_least_as_good
from textclf.studies.spec import SweepSpec
from textclf.studies.study import EVAL, TrialState, best_trials, candidates, comparable, signs
from textclf.tracking import models, registry

log = logging.getLogger(__name__)
MODEL_URI = "model_uri"  # trial user attribute: the logged model, if the trial kept one


def keeps_model(spec: SweepSpec, study: optuna.Study) -> Callable[[dict[str, float], str], bool]:
    """Decides, from a finished run's final metrics and evaluation rows, whether it logs its model:
    it must beat every complete trial scored on the same rows (one model kept per set of
    evaluation rows)."""

    def keep(metrics: dict[str, float], rows: str) -> bool:
        if spec.keep_models != "best":
            return spec.keep_models == "all"
        try:
            mine = [float(metrics[m]) for m, _ in spec.objectives]
        except KeyError:
            return False  # no objective value: the trial fails anyway
        return not any(
            at_least_as_good(t.values, mine, signs(study)) for t in comparable(study, rows)
        )

    return keep


def prune(spec: SweepSpec, study: optuna.Study) -> int:
    """Delete the models of complete trials that a better trial on the same rows has superseded."""
    if spec.keep_models != "best":
        return 0
    base = study.user_attrs.get(EVAL)
    groups = {t.user_attrs.get(EVAL, base) for t in _complete(study)}
    best = {t.number for rows in groups for t in best_trials(study, rows)}
    return sum(
        models.delete(t.user_attrs[MODEL_URI])
        for t in _complete(study)
        if MODEL_URI in t.user_attrs and t.number not in best
    )


def register_best(
    spec: SweepSpec, study: optuna.Study, name: str, tracking: TrackingConfig
) -> str | None:
    """The best complete trial on the base config's evaluation rows as a version of `name`,
    tagged with its study, trial, objective value and its own run's fingerprints; `champion`
    moves to it if it beats the champion (registry.promote, tracking.champion_test). Returns what
    happened, in words."""
    if not _complete(study):
        return None
    front = best_trials(study)
    if not front:
        return (
            f"nothing registered as {name!r}: no complete trial was scored on the base "
            f"config's evaluation rows (eval fingerprint {study.user_attrs.get(EVAL)}); the "
            "varied keys change the rows, and trials on other rows are not comparable. Put the "
            "base config's value among the varied ones, or register a run by hand"
        )
    best = front[0]
    if MODEL_URI not in best.user_attrs:
        log.warning("trial %d is the best but kept no model; nothing registered", best.number)
        return None
    champion = (
        (tracking.champion_test, tracking.champion_alpha) if len(study.directions) == 1 else None
    )
    version, said = registry.enter(
        best.user_attrs[MODEL_URI],
        name,
        best.user_attrs.get("mlflow_run_id", ""),
        spec.objectives[0],
        best.values[0],
        champion=champion,
        extra={
            "textclf.study": spec.name,
            "textclf.trial": str(best.number),
            registry.SELECTED_FROM: str(candidates(study)),
        },
    )
    return f"registered trial {best.number} as version {version} of {name!r}; {said}"


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
