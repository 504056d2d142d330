"""One fine-tuning run, top to bottom: load data -> build model (head, freeze / peft) -> fit -> evaluate -> log."""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers

from textclf import checkpoint, flops, metrics, tracking
from textclf.config import Config
from textclf.data import Splits, load_splits
from textclf.errors import InputError
from textclf.features import make_loaders
from textclf.model import build_classifier, count_params, load_backbone, trainable_names
from textclf.train import ReportFn, autocast_dtype, evaluate, fit, pick_device

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


@dataclass(frozen=True)
class RunResult:
    run_id: str
    metrics: dict[str, float]
    model_uri: str | None


def train_run(cfg: Config, tracking_uri: str, trial: TrialHooks | None = None, resume: str | None = None) -> RunResult:
    """One run; `resume` continues an earlier run of the same config from its last checkpoint."""
    start = time.perf_counter()
    # everything that can reject the input runs before the MLflow run exists
    device = check_device(cfg)
    check_checkpoint_dir(cfg)
    if resume:
        check_resumable(cfg, resume)
    splits = load_splits(cfg)
    backbone = load_backbone(cfg)
    transformers.set_seed(cfg.train.seed)  # the new head's init, dropout and batch order
    model = build_classifier(backbone, splits.label_names, cfg)
    loaders = make_loaders(splits, backbone.tokenizer, cfg.data.max_length, cfg.train.batch_size,
                           cfg.train.eval_batch_size, cfg.train.seed, device, cfg.train.num_workers,
                           cache_length(backbone, cfg) if cfg.data.token_cache else None, cfg.train.group_by_length)
    trainable, total = count_params(model)
    log.info("%d train / %d val / %d test rows, %d labels, %s on %s, %d/%d params trainable, effective "
             "batch %d", len(splits.train), len(splits.val), len(splits.test), len(splits.label_names),
             cfg.model.name, device, trainable, total, cfg.train.effective_batch_size())
    tracking.connect(tracking_uri, cfg.tracking.experiment)
    tags = tracking.run_tags(splits, device) | (trial.tags if trial else {})
    with tracking.run(cfg, tags, trial and trial.parent_run_id, trial.killed_by if trial else (), resume) as run_id:
        if trial and trial.on_start:
            trial.on_start(run_id)
        if not resume:  # a resumed run has its params, inputs and config already
            tracking.log_setup(cfg, splits, derived_params(cfg, splits) | (trial.params if trial else {}) |
                               {"model.attn_implementation": getattr(model.config, "_attn_implementation", None)})
            tracking.log_trainable(trainable_names(model))
        checkpoints = checkpoint_dir(cfg, run_id, resume)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        fit_start = time.perf_counter()
        fitted = fit(model, loaders.train, loaders.val, cfg.train, device, log=tracking.log_epoch,
                     report=trial and trial.report, checkpoints=checkpoints, train_probe=loaders.train_probe)
        if fitted.diverged:  # ended at the best earlier epoch: the run stands, and says why it stopped
            log.warning("training diverged: %s", fitted.diverged)
            tracking.update_run(run_id, {"textclf.diverged": fitted.diverged}, {})
        dtype = autocast_dtype(cfg.train.precision, device)
        test = evaluate(model, loaders.test, device, dtype)
        final = summarize(fitted, test, len(splits.label_names), trainable, total, device)
        final |= utilisation(model, backbone.config, fitted, device, dtype)
        final |= {"tokenize_time_s": loaders.tokenize_time_s, "token_cache_hit": float(loaders.token_cache_hit),
                  # from the command's start (data, model, tokens, run setup) to the first optimizer step
                  "time_to_first_step_s": fit_start - start + fitted.first_step_s}
        confusion = metrics.confusion(test.labels, test.predictions, splits.label_names)
        final |= tracking.drain(cfg.tracking.outage_wait_s)  # the server may have been away during training
        model_uri = tracking.log_model(model, backbone.tokenizer, cfg.data.max_length, backbone.location,
                                       cfg.model.save_base) if cfg.tracking.log_model else None
        final["total_time_s"] = time.perf_counter() - start
        tracking.log_results(final, fitted.history, fitted.best_epoch, confusion)
    return RunResult(run_id, final, model_uri)


# what may differ between a run and its resumption: where things go, not what is trained
_RESUME_FREE = ("tracking.", "train.checkpoint", "train.progress", "train.num_workers")


def check_device(cfg: Config) -> torch.device:
    name, where = cfg.train.device, f"{cfg.where('train.device')}: train.device: {cfg.train.device}"
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise InputError([f"{where}, but no CUDA device is available (torch.cuda.is_available() is False); "
                              f"use auto or cpu"])
        if index >= torch.cuda.device_count():
            raise InputError([f"{where}, but only {torch.cuda.device_count()} CUDA device(s) are visible; use "
                              f"cuda:0..cuda:{torch.cuda.device_count() - 1} or auto"])
    if name == "mps" and not torch.backends.mps.is_available():
        raise InputError([f"{where}, but Apple's MPS backend is not available here; use auto or cpu"])
    return pick_device(name)


def check_checkpoint_dir(cfg: Config) -> None:
    """A checkpoint directory that cannot be written fails here, not after the first epoch."""
    if not cfg.train.checkpoint:
        return
    path = Path(cfg.train.checkpoint_dir)
    where = f"{cfg.where('train.checkpoint_dir')}: train.checkpoint_dir: {path}"
    if path.exists() and not path.is_dir():
        raise InputError([f"{where} is a file; name a directory"])
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError([f"{where} cannot be created ({existing} is not a writable directory); name a writable "
                          f"directory"])


def checkpoint_dir(cfg: Config, run_id: str, resume: str | None) -> Path | None:
    if not (cfg.train.checkpoint or resume):
        return None
    directory = _checkpoints_of(cfg, run_id)
    if not resume:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(_fixed(cfg), default=str))
    return directory


def check_resumable(cfg: Config, run_id: str) -> None:
    directory = _checkpoints_of(cfg, run_id)
    where = f"--resume {run_id}"
    if not (directory / "config.json").is_file() or checkpoint.load(directory) is None:
        raise InputError([f"{where}: no complete checkpoint in {directory}; was the run started with "
                          f"train.checkpoint=true and the same train.checkpoint_dir?"])
    saved = json.loads((directory / "config.json").read_text())
    now = json.loads(json.dumps(_fixed(cfg), default=str))
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    if changed:
        raise InputError([f"{where}: the config differs from the checkpointed run's in {', '.join(changed)}; "
                          f"resume with the run's own config (its config.yaml artifact)"])


def _checkpoints_of(cfg: Config, run_id: str) -> Path:
    return Path(cfg.train.checkpoint_dir) / run_id


def _fixed(cfg: Config) -> dict:
    return {k: v for k, v in cfg.flat().items() if not k.startswith(_RESUME_FREE)}


def cache_length(backbone, cfg: Config) -> int:
    """Tokens are cached at the model's limit (capped for models without one), so every max length that
    a sweep tries slices the same cache."""
    return max(min(backbone.max_length(), 4096), cfg.data.max_length)


def derived_params(cfg: Config, splits: Splits) -> dict[str, object]:
    return {"data.num_labels": len(splits.label_names), "data.train_rows": len(splits.train),
            "data.val_rows": len(splits.val), "data.test_rows": len(splits.test),
            "data.label_map": list(splits.label_names),
            **{f"data.{reason}_dropped": count for reason, count in splits.dropped.items()},
            "train.effective_batch_size": cfg.train.effective_batch_size()}


def utilisation(model, config, fitted, device: torch.device, dtype) -> dict[str, float]:
    """Model TFLOP/s achieved in training steps and, where the device's peak is known, mfu (flops.py)."""
    per_token = flops.flops_per_token(model, config, flops.attention_length(fitted.tokens, fitted.token_squares))
    achieved = per_token * fitted.tokens / fitted.step_time_s
    out = {"model_tflops_per_s": achieved / 1e12}
    peak = flops.peak_flops(device, dtype)
    if peak:
        out |= {"mfu": achieved / peak, "peak_tflops": peak / 1e12}
    return out


def summarize(fitted, test, num_labels: int, trainable: int, total: int, device: torch.device) -> dict:
    best = fitted.best()
    final = {"best_epoch": fitted.best_epoch, "best_val_loss": best["val_loss"],
             "best_val_accuracy": best["val_accuracy"], "train_val_loss_ratio": best["train_val_loss_ratio"],
             "test_loss": test.loss, "test_accuracy": test.accuracy,
             "test_f1": metrics.f1(test.labels, test.predictions, num_labels),
             "epochs_run": len(fitted.history), "stopped_early": float(fitted.stopped_early),
             "train_time_s": fitted.train_time_s, "train_step_time_s": fitted.step_time_s,
             "train_samples_per_s": fitted.samples / fitted.step_time_s,
             "train_tokens_per_s": fitted.tokens / fitted.step_time_s,
             "train_padded_tokens_per_s": fitted.padded_tokens / fitted.step_time_s,
             "padding_fraction": 1 - fitted.tokens / max(fitted.padded_tokens, 1),
             "trainable_params": trainable, "total_params": total, "trainable_fraction": trainable / total}
    if device.type == "cuda":
        final["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return final
