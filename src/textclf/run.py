"""One fine-tuning run, top to bottom: prepare (check, load data, build the model: head, freeze /
peft, tokenize) -> fit -> evaluate -> summarize -> log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import transformers

from textclf.config import Config
from textclf.data import load_splits
from textclf.data.features import Loaders, decoded_samples, make_loaders
from textclf.data.source import Source
from textclf.data.splits import Splits
from textclf.model.build import (
    Backbone,
    build_classifier,
    count_params,
    load_backbone,
    trainable_names,
)
from textclf.stats import rows
from textclf.tracking import models, names, provenance, registry, runs, store
from textclf.training import metrics, summary
from textclf.training.device import autocast_dtype, check_device, tf32
from textclf.training.evaluate import Evaluation, evaluate
from textclf.training.loop import FitResult, ReportFn, fit
from textclf.training.resume import check_checkpoint_dir, check_resumable, checkpoint_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialHooks:
    """How a sweep trial's run differs: a child of the study's parent run, reporting each epoch."""

    parent_run_id: str
    params: dict[str, object]
    tags: dict[str, str]
    report: ReportFn | None = None  # (the best-val-loss epoch's row so far, epoch); raises to prune
    killed_by: tuple[type[BaseException], ...] = ()  # e.g. optuna.TrialPruned: the run ends KILLED
    on_start: Callable[[str], None] | None = None  # gets the child run's id as soon as it exists
    name: str | None = None  # the child run's name (names.trial_name)
    # given the final metrics and the eval fingerprint: log the model?
    keep_model: Callable[[dict[str, float], str], bool] | None = None


@dataclass(frozen=True)
class RunResult:
    run_id: str
    metrics: dict[str, float]
    model_uri: str | None
    history: list[dict[str, float]]  # one row per epoch
    eval_fingerprint: str = ""  # the validation and test rows it was scored on


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs before its MLflow run exists."""

    splits: Splits
    backbone: Backbone
    model: torch.nn.Module
    loaders: Loaders
    device: torch.device


def train_run(
    cfg: Config,
    tracking_uri: str,
    trial: TrialHooks | None = None,
    resume: str | None = None,
    source: Source | None = None,
) -> RunResult:
    """One run; `resume` continues an earlier run of the same config from its last checkpoint;
    `source` gives the data in memory instead of data.name (the Python API)."""
    start = time.perf_counter()
    # all that can reject the input, before the MLflow run exists
    ready = prepare(cfg, resume, source)
    store.connect(tracking_uri, cfg.tracking.experiment, cfg.tracking.journal_dir)
    with open_run(cfg, ready, trial, resume) as active:
        start_run(cfg, ready, trial, resume, active)
        fit_start = time.perf_counter()
        fitted = fit_model(cfg, ready, active, trial, resume)
        val, test, probe = evaluate_model(cfg, ready, fitted)
        final = summary.final_metrics(
            setup_of(cfg, ready), fitted, val, test, probe
        ) | active.drain(cfg.tracking.outage_wait_s)
        # data, model, tokens and run setup, then the first optimizer step
        final["time_to_first_step_s"] = fit_start - start + fitted.first_step_s
        # before the model: registering it compares these rows with the champion's
        active.log_predictions(*prediction_tables(ready.splits, {"val": val, "test": test}))
        model_uri = log_model(cfg, ready, final, trial)
        final["total_time_s"] = time.perf_counter() - start
        confusion = metrics.confusion(test.labels, test.predictions, ready.splits.label_names)
        active.log_results(final, confusion, run_figures(cfg, fitted, confusion))
    return RunResult(active.run_id, final, model_uri, fitted.history, ready.splits.eval_fingerprint)


def open_run(cfg: Config, ready: Prepared, trial: TrialHooks | None, resume: str | None):
    """The MLflow run (tracking/runs.py), with its tags, name, params, inputs and config."""
    splits = ready.splits
    tags = (
        provenance.run_tags(splits.fingerprint, splits.eval_fingerprint, splits.uri, ready.device)
        | {provenance.MONITOR: cfg.train.monitor}
        | (trial.tags if trial else {})
    )
    name = cfg.tracking.run_name or (trial and trial.name) or names.run_name(cfg)
    return runs.run(
        cfg.tracking,
        tags,
        trial and trial.parent_run_id,
        trial.killed_by if trial else (),
        resume,
        name=name,
        unique=cfg.tracking.run_name is None,
    )


def start_run(
    cfg: Config, ready: Prepared, trial: TrialHooks | None, resume: str | None, active
) -> None:
    """A new run's params (the config and what the data and model turned out to be), inputs, config
    file and trainable tensors; a trial learns its run id."""
    if trial and trial.on_start:
        trial.on_start(active.run_id)
    if not resume:  # a resumed run has its params, inputs and config already
        splits = ready.splits
        counts, tags = summary.derived_values(
            {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
            splits.label_names,
            splits.dropped,
            cfg.train.effective_batch_size(),
            getattr(ready.model.config, "_attn_implementation", None),
        )
        active.log_setup(
            cfg,
            splits.frames(),
            splits.uri,
            trial.params if trial else {},
            splits.split_fingerprints(),
        )
        active.log_derived(counts, tags)
        active.log_trainable(trainable_names(ready.model))
        active.log_samples(
            decoded_samples(ready.loaders.train, ready.backbone.tokenizer, splits.label_names)
        )


def fit_model(
    cfg: Config, ready: Prepared, active, trial: TrialHooks | None, resume: str | None
) -> FitResult:
    """training/loop.py's fit, logging each epoch into the run; a diverged run says why it
    stopped."""
    if ready.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ready.device)
    with tf32(ready.device):
        fitted = fit(
            ready.model,
            ready.loaders.train,
            ready.loaders.val,
            cfg.train,
            ready.device,
            log=active.log_epoch,
            report=trial and trial.report,
            train_probe=ready.loaders.train_probe,
            checkpoints=checkpoint_dir(cfg, active.run_id, resume),
        )
    active.log_steps("learning_rate_step", fitted.learning_rates)
    if fitted.diverged:  # ended at the best earlier epoch: the run stands, and says why it stopped
        log.warning("training diverged: %s", fitted.diverged)
        active.tag({"textclf.diverged": fitted.diverged})
    return fitted


def evaluate_model(
    cfg: Config, ready: Prepared, fitted: FitResult
) -> tuple[Evaluation, Evaluation, Evaluation | None]:
    """(validation, test, training probe) evaluations of the kept weights: the selected epoch's
    validation rows and probe (scored again after a resume past that epoch) and the test rows."""
    dtype, loaders = autocast_dtype(cfg.train.precision, ready.device), ready.loaders

    def score(loader):
        return evaluate(ready.model, loader, ready.device, dtype) if loader is not None else None

    with tf32(ready.device):
        return (
            fitted.best_val or score(loaders.val),
            score(loaders.test),
            fitted.best_probe or score(loaders.train_probe),
        )


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
    """Per split: every row's prediction and probabilities (stats/rows.py), and the most confident
    errors."""
    frames, errors = {}, {}
    for split, evaluation in evaluations.items():
        texts = getattr(splits, split).text
        frames[split] = rows.predictions_frame(texts, evaluation.labels, evaluation.probabilities)
        errors[split] = rows.misclassified(frames[split], texts, splits.label_names)
    return frames, errors


def run_figures(cfg: Config, fitted: FitResult, confusion: dict) -> dict:
    """The run's plots, unless tracking.log_figures is off (then matplotlib is not even
    imported)."""
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
    """The model, if this run keeps one (tracking.log_model; in a sweep, study.keep_models decides),
    and its registration as a version of tracking.register_as (registry.enter, as a sweep's best
    trial)."""
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


def prepare(cfg: Config, resume: str | None, source: Source | None = None) -> Prepared:
    """Check the device and checkpoints, load and split the data, build the model, tokenize:
    InputError (exit 2) for anything wrong, before the MLflow run exists."""
    device = check_device(cfg)
    check_checkpoint_dir(cfg)
    runs.check_journal_dir(cfg)
    if resume:
        check_resumable(cfg, resume)
    splits = load_splits(cfg, source)
    backbone = load_backbone(cfg)
    transformers.set_seed(cfg.train.seed)  # the new head's init, dropout and batch order
    model = build_classifier(backbone, splits.label_names, cfg)
    t = cfg.train
    loaders = make_loaders(
        splits,
        backbone.tokenizer,
        max_length=cfg.data.max_length,
        batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size,
        seed=t.seed,
        device=device,
        num_workers=t.num_workers,
        cache_length=cache_length(backbone, cfg) if cfg.data.token_cache else None,
        group_by_length=t.group_by_length,
        compile=t.compile,
    )
    trainable, total = count_params(model)
    log.info(
        "%d train / %d val / %d test rows, %d labels, %s on %s, %d/%d params trainable, "
        "effective batch %d",
        len(splits.train),
        len(splits.val),
        len(splits.test),
        len(splits.label_names),
        cfg.model.name,
        device,
        trainable,
        total,
        cfg.train.effective_batch_size(),
    )
    return Prepared(splits, backbone, model, loaders, device)


def cache_length(backbone: Backbone, cfg: Config) -> int:
    """Tokens are cached at the model's limit (capped for models without one), so every max length
    that a sweep tries slices the same cache."""
    return max(min(backbone.max_length(), 4096), cfg.data.max_length)
