"""The end of a run in numbers, from plain values (no MLflow, no data or model objects): the single
final metrics every run logs, their 95% intervals over the evaluation rows, utilisation, and the
params derived from the data and model. run.py gathers the inputs; tracking/ logs what comes out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from textclf.stats import intervals
from textclf.training import flops
from textclf.training.evaluate import Evaluation
from textclf.training.loop import FitResult
from textclf.training.metrics import f1

# what a run is selected, registered and promoted by unless a sweep file says otherwise
DEFAULT_OBJECTIVE = ("best_val_accuracy", "maximize")
# the final metrics logged with a 95% interval (score_intervals)
INTERVAL_METRICS = (
    "best_val_accuracy",
    "test_accuracy",
    "test_f1",
    "best_val_loss",
    "test_loss",
    "train_val_loss_ratio",
)
# what a finished run logs as single final values (tests/test_run.py checks a real run against it)
FINAL_METRICS = (
    "best_epoch",
    "best_val_loss",
    "best_val_accuracy",
    "train_val_loss_ratio",
    "test_loss",
    "test_accuracy",
    "test_f1",
    "epochs_run",
    "stopped_early",
    "train_time_s",
    "train_step_time_s",
    "train_samples_per_s",
    "train_tokens_per_s",
    "train_padded_tokens_per_s",
    "padding_fraction",
    "trainable_params",
    "total_params",
    "trainable_fraction",
    "tokenize_time_s",
    "token_cache_hit",
    "time_to_first_step_s",
    "model_tflops_per_s",
    "mfu",
    "peak_tflops",
    "tracking_longest_wait_s",
    "tracking_failed_sends",
    "total_time_s",
    "peak_gpu_mem_mb",  # on a GPU only
    # with train.compile only: seconds spent compiling, inside train_time_s
    "compile_time_s",
    # models saved in textclf's own layout only (custom heads, peft)
    "model_artifact_mb",
    # 95% intervals over the evaluation rows (stats/intervals.py bounds: <metric>_ci_low and
    # _ci_high): Wilson for accuracy, percentile bootstraps over the rows for F1, the mean losses
    # and the loss ratio (probe rows and validation rows resampled each on its own)
    *(bound for metric in INTERVAL_METRICS for bound in intervals.bounds(metric)),
)
# the final metrics people compare, in the order tables show them (CLI summary, sweep trials,
# report)
HEADLINE_METRICS = (
    "best_val_accuracy",
    "test_accuracy",
    "test_f1",
    "train_val_loss_ratio",
    "trainable_params",
    "train_time_s",
)
# what `textclf train` prints, each score with its interval
PRINTED_METRICS = (
    "best_epoch",
    "best_val_accuracy",
    "best_val_loss",
    "test_accuracy",
    "test_f1",
    "test_loss",
    "train_val_loss_ratio",
    "trainable_params",
    "train_time_s",
    "train_samples_per_s",
)


@dataclass(frozen=True)
class Setup:
    """What the summary needs to know about the run's data, model and device."""

    num_labels: int
    trainable_params: int
    total_params: int
    tokenize_time_s: float
    token_cache_hit: bool
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype of the training steps
    compiled: bool  # train.compile
    model: torch.nn.Module  # what flops.py counts the cost of a token in
    model_config: object  # the backbone's transformers config (layers, hidden size)


def final_metrics(
    setup: Setup,
    fitted: FitResult,
    val: Evaluation,
    test: Evaluation,
    probe: Evaluation | None = None,
) -> dict[str, float]:
    """The single final values (FINAL_METRICS) but the ones only known later: time_to_first_step_s,
    total_time_s and the tracking ones."""
    steps = fitted.step_time_s
    final = {
        **selected_values(fitted),
        "test_loss": test.loss,
        "test_accuracy": test.accuracy,
        "test_f1": f1(test.labels, test.predictions, setup.num_labels),
        "epochs_run": len(fitted.history),
        "stopped_early": float(fitted.stopped_early),
        "train_time_s": fitted.train_time_s,
        "train_step_time_s": steps,
        "train_samples_per_s": fitted.samples / steps,
        "train_tokens_per_s": fitted.tokens / steps,
        "train_padded_tokens_per_s": fitted.padded_tokens / steps,
        "padding_fraction": 1 - fitted.tokens / max(fitted.padded_tokens, 1),
        "trainable_params": setup.trainable_params,
        "total_params": setup.total_params,
        "trainable_fraction": setup.trainable_params / setup.total_params,
        "tokenize_time_s": setup.tokenize_time_s,
        "token_cache_hit": float(setup.token_cache_hit),
    }
    if setup.device.type == "cuda":
        final["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated(setup.device) / 2**20
    if setup.compiled:
        final["compile_time_s"] = fitted.compile_time_s
    return final | utilisation(setup, fitted) | score_intervals(setup, val, test, probe)


def selected_values(fitted: FitResult) -> dict[str, float]:
    """The objectives a sweep can select on, each a property of the kept weights (the epoch that
    train.monitor selected): its validation loss, accuracy and train/val loss ratio. The pruner is
    told the same values each epoch (training/metrics.py RUNNING), so a pruned trial's value and a
    complete one's are one quantity. With train.monitor=val_accuracy, best_val_accuracy is a maximum
    over epochs (a selected, optimistic figure: runs are tagged by monitor)."""
    best = fitted.best()
    return {
        "best_epoch": fitted.best_epoch,
        "best_val_loss": best["val_loss"],
        "best_val_accuracy": best["val_accuracy"],
        "train_val_loss_ratio": best["train_val_loss_ratio"],
    }


def score_intervals(
    setup: Setup, val: Evaluation, test: Evaluation, probe: Evaluation | None = None
) -> dict[str, float]:
    """95% intervals over the evaluation rows: Wilson for accuracy, a row bootstrap for test F1 and
    the mean losses, and for the train/val loss ratio a bootstrap of the training probe's rows and
    the validation rows, each on its own (no probe: the ratio's train side is the running loss, no
    rows to resample)."""
    spans = {
        name: intervals.wilson(int((e.labels == e.predictions).sum()), len(e.labels))
        for name, e in (("best_val_accuracy", val), ("test_accuracy", test))
    }
    spans["test_f1"] = intervals.bootstrap_f1(test.labels, test.predictions, setup.num_labels)
    losses = {
        name: row_losses(e)
        for name, e in (("val", val), ("test", test), ("probe", probe))
        if e is not None and e.probabilities is not None
    }
    for name, split in (("best_val_loss", "val"), ("test_loss", "test")):
        if split in losses:
            spans[name] = intervals.bootstrap_mean(losses[split])
    if {"probe", "val"} <= set(losses):
        spans["train_val_loss_ratio"] = intervals.bootstrap_ratio(losses["probe"], losses["val"])
    return {
        bound: value
        for name, span in spans.items()
        for bound, value in zip(intervals.bounds(name), span, strict=False)
    }


def row_losses(evaluation: Evaluation) -> np.ndarray:
    """Each row's cross-entropy, -log p(label), from the evaluation's probabilities."""
    if evaluation.probabilities is None:
        raise ValueError("the evaluation kept no probabilities")
    picked = evaluation.probabilities[np.arange(len(evaluation.labels)), evaluation.labels]
    return -np.log(np.clip(picked.astype(np.float64), 1e-12, None))


def utilisation(setup: Setup, fitted: FitResult) -> dict[str, float]:
    """Model TFLOP/s achieved in training steps, and mfu where the device's peak is known."""
    length = flops.attention_length(fitted.tokens, fitted.token_squares)
    per_token = flops.flops_per_token(setup.model, setup.model_config, length)
    achieved = per_token * fitted.tokens / fitted.step_time_s
    out = {"model_tflops_per_s": achieved / 1e12}
    peak = flops.peak_flops(setup.device, setup.dtype)
    if peak:
        out |= {"mfu": achieved / peak, "peak_tflops": peak / 1e12}
    return out


def derived_values(
    rows: dict[str, int],
    label_names: tuple[str, ...],
    dropped: dict[str, int],
    effective_batch_size: int,
    attn_implementation: str | None,
) -> tuple[dict[str, float], dict[str, str]]:
    """What the data and model turned out to be, beside the config a run logs as params: counts as
    metrics, names as tags. Params stay what the user chose, so MLflow's compare view (it plots the
    first differing params) and its columns show the choices."""
    metrics: dict[str, float] = {
        "data.num_labels": len(label_names),
        **{f"data.{split}_rows": count for split, count in rows.items()},
        **{f"data.{reason}_dropped": count for reason, count in dropped.items()},
        "train.effective_batch_size": effective_batch_size,
    }
    return metrics, {
        "textclf.label_map": ",".join(label_names),
        "textclf.attn_implementation": str(attn_implementation),
    }


def is_derived(name: str) -> bool:
    """A derived value's name (derived_values), also where older runs logged it as a param."""
    return name.endswith("_dropped") or name in (
        "data.num_labels",
        "data.train_rows",
        "data.val_rows",
        "data.test_rows",
        "data.label_map",
        "train.effective_batch_size",
        "model.attn_implementation",
    )
