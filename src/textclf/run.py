"""One fine-tuning run, top to bottom: check -> load data -> build model (head, freeze / peft) -> tokenize ->
fit -> evaluate -> log."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import transformers

from textclf import names
from textclf.config import Config
from textclf.data import Splits, load_splits
from textclf.data.features import Loaders, make_loaders
from textclf.data.sources import Source
from textclf.model.build import (
    Backbone,
    build_classifier,
    count_params,
    load_backbone,
    trainable_names,
)
from textclf.stats import intervals, rows
from textclf.tracking import models, provenance, registry, runs, store
from textclf.training import flops, metrics
from textclf.training.device import autocast_dtype, check_device, tf32
from textclf.training.loop import FitResult, ReportFn, evaluate, fit
from textclf.training.resume import (
    check_checkpoint_dir,
    check_resumable,
    checkpoint_dir,
)

log = logging.getLogger(__name__)
MONITOR = "textclf.monitor"  # run tag: what selected the epoch (train.monitor); it splits comparability groups


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


def train_run(cfg: Config, tracking_uri: str, trial: TrialHooks | None = None, resume: str | None = None,
              source: Source | None = None) -> RunResult:
    """One run; `resume` continues an earlier run of the same config from its last checkpoint; `source` gives
    the data in memory instead of data.name (the Python API)."""
    start = time.perf_counter()
    ready = prepare(cfg, resume, source)  # everything that can reject the input runs before the MLflow run exists
    store.connect(tracking_uri, cfg.tracking.experiment, cfg.tracking.journal_dir)
    tags = provenance.run_tags(ready.splits.fingerprint, ready.splits.eval_fingerprint, ready.splits.uri,
                               ready.device) | {MONITOR: cfg.train.monitor} | (trial.tags if trial else {})
    name = cfg.tracking.run_name or (trial and trial.name) or names.run_name(cfg)
    with runs.run(cfg, tags, trial and trial.parent_run_id, trial.killed_by if trial else (), resume,
                  name=name, unique=cfg.tracking.run_name is None) as active:
        if trial and trial.on_start:
            trial.on_start(active.run_id)
        if not resume:  # a resumed run has its params, inputs and config already
            active.log_setup(cfg, ready.splits.frames(), ready.splits.uri, derived_params(cfg, ready) |
                             (trial.params if trial else {}))
            active.log_trainable(trainable_names(ready.model))
        if ready.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ready.device)
        fit_start = time.perf_counter()
        with tf32(ready.device):
            fitted = fit(ready.model, ready.loaders.train, ready.loaders.val, cfg.train, ready.device,
                         log=active.log_epoch, report=trial and trial.report, train_probe=ready.loaders.train_probe,
                         checkpoints=checkpoint_dir(cfg, active.run_id, resume))
            dtype = autocast_dtype(cfg.train.precision, ready.device)
            test = evaluate(ready.model, ready.loaders.test, ready.device, dtype)
            # the selected epoch's validation rows; after a resume past that epoch, scored again
            val = fitted.best_val or evaluate(ready.model, ready.loaders.val, ready.device, dtype)
        if fitted.diverged:  # ended at the best earlier epoch: the run stands, and says why it stopped
            log.warning("training diverged: %s", fitted.diverged)
            active.tag({"textclf.diverged": fitted.diverged})
        final = final_metrics(cfg, ready, fitted, test) | score_intervals(ready, val, test) | \
            active.drain(cfg.tracking.outage_wait_s)
        final["time_to_first_step_s"] = fit_start - start + fitted.first_step_s  # data, model, tokens, run setup
        # before the model: registering it compares these rows with the champion's (registry.promote)
        active.log_predictions(*prediction_tables(ready.splits, {"val": val, "test": test}))
        model_uri = log_model(cfg, ready, final, trial)
        final["total_time_s"] = time.perf_counter() - start
        confusion = metrics.confusion(test.labels, test.predictions, ready.splits.label_names)
        active.log_results(final, confusion, run_figures(cfg, fitted, confusion))
    return RunResult(active.run_id, final, model_uri, fitted.history, ready.splits.eval_fingerprint)


def score_intervals(ready: Prepared, val, test) -> dict[str, float]:
    """95% intervals over the evaluation rows: Wilson for accuracy, a row bootstrap for test F1 (stats/)."""
    spans = {name: intervals.wilson(int((e.labels == e.predictions).sum()), len(e.labels))
             for name, e in (("best_val_accuracy", val), ("test_accuracy", test))}
    spans["test_f1"] = intervals.bootstrap_f1(test.labels, test.predictions, len(ready.splits.label_names))
    return {f"{name}_ci_{end}": value for name, (low, high) in spans.items()
            for end, value in (("low", low), ("high", high))}


def prediction_tables(splits: Splits, evaluations: dict) -> tuple[dict, dict]:
    """Per split: every row's prediction and probabilities (stats/rows.py), and the most confident errors."""
    frames, errors = {}, {}
    for split, evaluation in evaluations.items():
        texts = getattr(splits, split).text
        frames[split] = rows.predictions_frame(texts, evaluation.labels, evaluation.probabilities)
        errors[split] = rows.misclassified(frames[split], texts, splits.label_names)
    return frames, errors


def run_figures(cfg: Config, fitted: FitResult, confusion: dict) -> dict:
    """The run's plots, unless tracking.log_figures is off (then matplotlib is not even imported)."""
    if not cfg.tracking.log_figures:
        return {}
    from textclf.reporting import figures

    return {"curves.png": figures.curves(fitted.history, fitted.best_epoch),
            "confusion_matrix.png": figures.confusion_figure(confusion["matrix"], confusion["labels"],
                                                             "test confusion matrix")}


def log_model(cfg: Config, ready: Prepared, final: dict[str, float], trial: TrialHooks | None) -> str | None:
    """The model, if this run keeps one (tracking.log_model; in a sweep, study.keep_models decides), and its
    registration as a version of tracking.register_as."""
    keep = trial.keep_model(final, ready.splits.eval_fingerprint) if trial and trial.keep_model else \
        cfg.tracking.log_model
    if not keep:
        return None
    uri = models.log_model(ready.model, ready.backbone.tokenizer, cfg.data.max_length, ready.backbone.location,
                           cfg.model.save_base, list(ready.splits.test.text[:2]))
    if cfg.tracking.register_as:
        name, t = cfg.tracking.register_as, cfg.tracking
        version = registry.register(uri, name, {
            "textclf.run_id": runs.active_run_id(), "textclf.objective": "best_val_accuracy",
            "textclf.direction": "maximize", "textclf.objective_value": str(final["best_val_accuracy"]),
            "textclf.eval_fingerprint": ready.splits.eval_fingerprint,
            "textclf.split_fingerprint": ready.splits.fingerprint, MONITOR: cfg.train.monitor}, final)
        log.info("%s", registry.promote(name, version, t.champion_test, t.champion_alpha))
    return uri


def prepare(cfg: Config, resume: str | None, source: Source | None = None) -> Prepared:
    """Check the device and checkpoints, load and split the data, build the model, tokenize: InputError (exit 2)
    for anything wrong, before the MLflow run exists."""
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
    loaders = make_loaders(splits, backbone.tokenizer, max_length=cfg.data.max_length, batch_size=t.batch_size,
                           eval_batch_size=t.eval_batch_size, seed=t.seed, device=device, num_workers=t.num_workers,
                           cache_length=cache_length(backbone, cfg) if cfg.data.token_cache else None,
                           group_by_length=t.group_by_length, compile=t.compile)
    trainable, total = count_params(model)
    log.info("%d train / %d val / %d test rows, %d labels, %s on %s, %d/%d params trainable, effective "
             "batch %d", len(splits.train), len(splits.val), len(splits.test), len(splits.label_names),
             cfg.model.name, device, trainable, total, cfg.train.effective_batch_size())
    return Prepared(splits, backbone, model, loaders, device)


def cache_length(backbone: Backbone, cfg: Config) -> int:
    """Tokens are cached at the model's limit (capped for models without one), so every max length that
    a sweep tries slices the same cache."""
    return max(min(backbone.max_length(), 4096), cfg.data.max_length)


def derived_params(cfg: Config, ready: Prepared) -> dict[str, object]:
    splits = ready.splits
    return {"data.num_labels": len(splits.label_names), "data.train_rows": len(splits.train),
            "data.val_rows": len(splits.val), "data.test_rows": len(splits.test),
            "data.label_map": list(splits.label_names),
            **{f"data.{reason}_dropped": count for reason, count in splits.dropped.items()},
            "train.effective_batch_size": cfg.train.effective_batch_size(),
            "model.attn_implementation": getattr(ready.model.config, "_attn_implementation", None)}


def final_metrics(cfg: Config, ready: Prepared, fitted: FitResult, test) -> dict[str, float]:
    """The single final values every run logs (training/metrics.py FINAL_METRICS)."""
    best, device, (trainable, total) = fitted.best(), ready.device, count_params(ready.model)
    steps = fitted.step_time_s
    # best_val_loss is the lowest validation loss whatever selected the epoch; best_val_accuracy is the selected
    # epoch's (with train.monitor=val_accuracy the highest: a selected maximum, so runs are tagged by monitor)
    lowest = min(row["val_loss"] for row in fitted.history)
    final = {"best_epoch": fitted.best_epoch, "best_val_loss": lowest,
             "best_val_accuracy": best["val_accuracy"], "train_val_loss_ratio": best["train_val_loss_ratio"],
             "test_loss": test.loss, "test_accuracy": test.accuracy,
             "test_f1": metrics.f1(test.labels, test.predictions, len(ready.splits.label_names)),
             "epochs_run": len(fitted.history), "stopped_early": float(fitted.stopped_early),
             "train_time_s": fitted.train_time_s, "train_step_time_s": steps,
             "train_samples_per_s": fitted.samples / steps, "train_tokens_per_s": fitted.tokens / steps,
             "train_padded_tokens_per_s": fitted.padded_tokens / steps,
             "padding_fraction": 1 - fitted.tokens / max(fitted.padded_tokens, 1),
             "trainable_params": trainable, "total_params": total, "trainable_fraction": trainable / total,
             "tokenize_time_s": ready.loaders.tokenize_time_s, "token_cache_hit": float(ready.loaders.token_cache_hit)}
    if device.type == "cuda":
        final["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if cfg.train.compile:
        final["compile_time_s"] = fitted.compile_time_s
    return final | utilisation(ready, fitted, autocast_dtype(cfg.train.precision, device))


def utilisation(ready: Prepared, fitted: FitResult, dtype) -> dict[str, float]:
    """Model TFLOP/s achieved in training steps and, where the device's peak is known, mfu (flops.py)."""
    length = flops.attention_length(fitted.tokens, fitted.token_squares)
    achieved = flops.flops_per_token(ready.model, ready.backbone.config, length) * fitted.tokens / fitted.step_time_s
    out = {"model_tflops_per_s": achieved / 1e12}
    peak = flops.peak_flops(ready.device, dtype)
    if peak:
        out |= {"mfu": achieved / peak, "peak_tflops": peak / 1e12}
    return out
