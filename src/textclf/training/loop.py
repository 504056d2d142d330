"""The training loop: plain PyTorch. It imports neither mlflow nor optuna; it reports through
callables.

AdamW or Adam with a warmup schedule (optim.py), gradient clipping and accumulation (each optimizer
step's gradient is the mean over the rows of its micro-batches), autocast on GPU, early stopping on
validation loss (or accuracy, train.monitor) with the best epoch's weights restored at the end. Each
epoch's train loss/accuracy are measured by the same evaluation code as validation, on a fixed
sample of training rows (`train_probe`), so their ratio compares like with like; the running
train-mode figures are kept as `train_loss_running` / `train_accuracy_running`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from textclf import interrupts
from textclf.config import TrainConfig
from textclf.training.checkpoint import Parts, generator_of, load, restore, snapshot
from textclf.training.compiled import CompileClock, compiled
from textclf.training.device import autocast_dtype
from textclf.training.evaluate import Evaluation, evaluate, to_device
from textclf.training.optim import make_optimizer, make_schedule
from textclf.training.steps import Steps, check_progress, scale_gradients, step

LogFn = Callable[[dict[str, float], int], None]  # (metrics, epoch)
# (the row of the best-val-loss epoch so far, epoch): what the objective would be if training
# stopped now; may raise to stop (pruning)
ReportFn = Callable[[dict[str, float], int], None]


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    # 1-based epoch of the best monitored value (lowest val loss by default); its weights
    best_epoch: int = 0
    train_time_s: float = 0.0  # wall time of fit: training steps and per-epoch validation
    step_time_s: float = 0.0  # wall time spent in training steps only
    samples: int = 0  # training sequences processed
    tokens: int = 0  # real (unpadded) training tokens processed
    padded_tokens: int = 0  # token slots computed, padding included
    first_step_s: float = 0.0  # from the start of fit to the end of the first optimizer step
    stopped_early: bool = False
    # why training ended at an earlier epoch's weights (a NaN loss after epoch 1), else ""
    diverged: str = ""
    token_squares: int = 0  # sum of squared real sequence lengths (the attention term of flops.py)
    # train.compile: seconds spent compiling, inside step_time_s (compiled.py)
    compile_time_s: float = 0.0
    # the selected epoch's validation rows and training probe (None after a resume past it)
    best_val: Evaluation | None = None
    best_probe: Evaluation | None = None
    # the learning rate each optimizer step applied (after warmup and decay), in order
    learning_rates: list[float] = field(default_factory=list)

    def best(self) -> dict[str, float]:
        return self.history[self.best_epoch - 1]


def fit(
    model: torch.nn.Module,
    train: DataLoader,
    val: DataLoader,
    cfg: TrainConfig,
    device: torch.device,
    log: LogFn = lambda metrics, epoch: None,
    report: ReportFn | None = None,
    checkpoints: Path | None = None,
    train_probe: DataLoader | None = None,
) -> FitResult:
    """Train for cfg.epochs; with `checkpoints`, resume from the newest complete checkpoint there
    and save one after every epoch (checkpoint.py): a resumed run ends bit-identical to an
    uninterrupted one on CPU. A non-finite loss in epoch 1 raises FloatingPointError; later, it ends
    training at the best epoch so far."""
    dtype = autocast_dtype(cfg.precision, device)
    model.to(device)
    optimizer = make_optimizer(model, cfg, device)
    scheduler = make_schedule(optimizer, cfg, len(train))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    result, best_score, best_state, start = FitResult(), math.inf, None, time.perf_counter()
    parts = Parts(model, optimizer, scheduler, scaler, generator_of(train))
    done = 0
    if checkpoints is not None and (found := load(checkpoints)):
        done, best_score, best_state = restore(found, parts, result, device)
        # it had ended: only the test evaluation is left
        done = cfg.epochs if result.stopped_early else done
    # forward: model unless train.compile
    with compiled(model, cfg.compile, device) as (forward, clock):
        for epoch in range(done + 1, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            try:
                running = train_epoch(
                    forward,
                    train,
                    optimizer,
                    scheduler,
                    scaler,
                    cfg,
                    device,
                    dtype,
                    f"epoch {epoch}/{cfg.epochs}",
                    clock=clock,
                )
                steps_end = time.perf_counter()
                check = evaluate(model, val, device, dtype, progress=cfg.progress, desc="val")
                if not math.isfinite(check.loss):
                    raise FloatingPointError(
                        f"validation loss is {check.loss} after epoch "
                        f"{epoch}; lower train.learning_rate or use "
                        "train.precision=fp32"
                    )
            except FloatingPointError as e:
                if best_state is None:  # nothing good to fall back on
                    raise
                result.diverged = f"{str(e).split('; lower')[0]}; kept epoch {result.best_epoch}"
                break
            count(result, running, steps_end - epoch_start, start)
            probe = (
                evaluate(model, train_probe, device, dtype, desc="train probe")
                if train_probe
                else None
            )
            row = epoch_row(running, probe, check, time.perf_counter() - epoch_start)
            result.history.append(row)
            log(row, epoch)
            # keep a CPU copy of what trains
            if (score := monitored(row, cfg.monitor)) < best_score - cfg.min_delta:
                best_score, result.best_epoch, best_state = score, epoch, _trainable_state(model)
                result.best_val, result.best_probe = check, probe
            elif cfg.patience and epoch - result.best_epoch >= cfg.patience:
                result.stopped_early = True
            if checkpoints is not None:
                snapshot(checkpoints, epoch, parts, result, best_score, best_state)
            if report is not None:
                report(result.best(), epoch)
            if result.stopped_early:
                break
        result.compile_time_s = clock.seconds()
    model.load_state_dict(best_state, strict=False)
    result.train_time_s = time.perf_counter() - start
    return result


def monitored(row: dict[str, float], monitor: str) -> float:
    """The epoch's score for early stopping, lower is better: val loss, or minus val accuracy."""
    return row["val_loss"] if monitor == "val_loss" else -row["val_accuracy"]


@dataclass
class Running:
    """What one training epoch measured on the fly (train mode, weights moving)."""

    loss: float
    accuracy: float
    samples: int
    tokens: int
    padded_tokens: int
    token_squares: int
    first_step: float | None  # perf_counter time at which the first optimizer step had finished
    learning_rates: list[float]  # what each optimizer step applied
    grad_norm: float  # mean gradient norm over the optimizer steps, before clipping
    grad_norm_max: float


def count(result: FitResult, running: Running, step_time_s: float, fit_start: float) -> None:
    result.step_time_s += step_time_s
    result.samples += running.samples
    result.tokens += running.tokens
    result.padded_tokens += running.padded_tokens
    result.token_squares += running.token_squares
    result.learning_rates += running.learning_rates
    if not result.history and running.first_step is not None:
        result.first_step_s = running.first_step - fit_start


def epoch_row(
    running: Running, probe: Evaluation | None, val: Evaluation, seconds: float
) -> dict[str, float]:
    """One epoch's metrics; the loss ratio divides eval-mode losses (the probe's, when there is
    one)."""
    train_loss, train_accuracy = (
        (probe.loss, probe.accuracy) if probe else (running.loss, running.accuracy)
    )
    return {
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "val_loss": val.loss,
        "val_accuracy": val.accuracy,
        "train_val_loss_ratio": train_loss / max(val.loss, 1e-12),
        "train_loss_running": running.loss,
        "train_accuracy_running": running.accuracy,
        "epoch_time_s": seconds,
        "learning_rate": running.learning_rates[-1],
        "grad_norm": running.grad_norm,
        "grad_norm_max": running.grad_norm_max,
    }


def train_epoch(
    model,
    loader,
    optimizer,
    scheduler,
    scaler,
    cfg: TrainConfig,
    device,
    dtype,
    desc: str,
    *,
    clock: CompileClock,
) -> Running:
    """One pass over `loader`. Each micro-batch's summed loss is divided by the rows a full window
    holds (batch_size x grad_accum_steps); a window that ends up shorter (the epoch's last, or a
    short batch inside it) has its gradient rescaled to the mean over the rows it really had."""
    model.train()
    loss_sum = torch.zeros((), device=device)  # accumulated on device: no sync per step
    correct = torch.zeros((), device=device, dtype=torch.long)
    samples = tokens = padded = squares = window = 0
    first_step, steps = None, Steps()
    accum, n = cfg.grad_accum_steps, len(loader)
    full = cfg.batch_size * accum
    bar = tqdm(loader, desc=desc, disable=not cfg.progress, leave=False, mininterval=1.0)
    for i, batch in enumerate(bar, start=1):
        interrupts.check()
        inputs, labels = to_device(batch, device, model)
        with clock.timing(tuple(inputs["input_ids"].shape)):  # times nothing unless train.compile
            with torch.autocast(
                device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            ):
                logits = model(**inputs).logits
            loss = F.cross_entropy(logits.float(), labels, reduction="sum")
            scaler.scale(loss / full).backward()
        loss_sum += loss.detach()
        correct += (logits.argmax(-1) == labels).sum()
        window += len(labels)
        samples, tokens = samples + len(labels), tokens + batch["tokens"]
        padded, squares = padded + batch["input_ids"].numel(), squares + batch["token_squares"]
        if i % accum == 0 or i == n:
            if window != full:
                scale_gradients(model, full / window)
            steps.add(*step(model, optimizer, scheduler, scaler, cfg.max_grad_norm))
            window = 0
            if first_step is None:
                if device.type == "cuda":
                    # once: the first step's real end, not its launch
                    torch.cuda.synchronize(device)
                first_step = time.perf_counter()
        if i % 50 == 0 or i == n:  # one sync per 50 steps: progress and a NaN check
            check_progress(bar, loss_sum, correct, samples, f"{desc}, step {i}")
    return Running(
        loss_sum.item() / samples,
        correct.item() / samples,
        samples,
        tokens,
        padded,
        squares,
        first_step,
        steps.learning_rates,
        *steps.norms(),
    )


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad
    }
