"""What a finished fit turns into: the summary's inputs, the per-row prediction tables, the run's
figures, and the logged (and maybe registered) model."""

from __future__ import annotations

import logging

from textclf.config import Config
from textclf.data.splits import Splits
from textclf.model.build import count_params
from textclf.run.hooks import TrialHooks
from textclf.run.prepare import Prepared
from textclf.stats import rows
from textclf.tracking import models, registry, runs
from textclf.training import summary
from textclf.training.device import autocast_dtype
from textclf.training.loop import FitResult

log = logging.getLogger(__name__)


def setup_of(cfg: Config, ready: Prepared) -> summary.Setup:
    trainable, total = count_params(ready.model)
    return summary.Setup(
        len(ready.splits.label_names),
        trainable,
        total,
        ready.loaders.tokenize_time_s,
        ready.loaders.token_cache_hit,
        ready.device,
        autocast_dtype(cfg.train.precision, ready.device),
        cfg.train.compile,
        ready.model,
        ready.backbone.config,
    )


def prediction_tables(splits: Splits, evaluations: dict) -> tuple[dict, dict]:
    """Per split: each row's prediction and probabilities (stats/rows.py), the surest errors."""
    frames, errors = {}, {}
    for split, evaluation in evaluations.items():
        texts = getattr(splits, split).text
        frames[split] = rows.predictions_frame(texts, evaluation.labels, evaluation.probabilities)
        errors[split] = rows.misclassified(frames[split], texts, splits.label_names)
    return frames, errors


def run_figures(cfg: Config, fitted: FitResult, confusion: dict) -> dict:
    """The run's plots, unless tracking.log_figures is off (then matplotlib is never imported)."""
    if not cfg.tracking.log_figures:
        return {}
    from textclf.reporting import figures

    return {
        "curves.png": figures.curves(fitted.history, fitted.best_epoch),
        "confusion_matrix.png": figures.confusion_figure(
            confusion["matrix"], confusion["labels"], "test confusion matrix"
        ),
    }


def log_model(
    cfg: Config, ready: Prepared, final: dict[str, float], trial: TrialHooks | None
) -> str | None:
    """The model, if this run keeps one (tracking.log_model; in a sweep, study.keep_models
    decides), and its registration as a version of tracking.register_as (registry.enter, as a
    sweep's best trial)."""
    keep = (
        trial.keep_model(final, ready.splits.eval_fingerprint)
        if trial and trial.keep_model
        else cfg.tracking.log_model
    )
    if not keep:
        return None
    uri = models.log_model(
        ready.model,
        ready.backbone.tokenizer,
        cfg.data.max_length,
        ready.backbone.location,
        cfg.model.save_base,
        list(ready.splits.test.text[:2]),
    )
    t = cfg.tracking
    if t.register_as:
        objective = summary.DEFAULT_OBJECTIVE
        _, said = registry.enter(
            uri,
            t.register_as,
            runs.active_run_id(),
            objective,
            final[objective[0]],
            final,
            champion=(t.champion_test, t.champion_alpha),
        )
        log.info("%s", said)
    return uri
