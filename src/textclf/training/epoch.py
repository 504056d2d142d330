"""One training epoch: a pass over the training batches with gradient accumulation, and what it
measured on the fly (train mode, weights moving). Plain PyTorch, as loop.py."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from textclf import interrupts
from textclf.config import TrainConfig
from textclf.training import ddp
from textclf.training.compiled import CompileClock
from textclf.training.ddp import SOLO, World, accumulating
from textclf.training.evaluate import Evaluation, to_device
from textclf.training.steps import Steps, check_progress, scale_gradients, step


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


@dataclass
class Optimizing:
    """What one training step updates and how: the model (or its compiled forward), its optimizer,
    schedule and loss scaler, and the settings they run under."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    cfg: TrainConfig
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None: fp32
    world: World = SOLO  # the ranks training this model together (train.devices)


class Tally:
    """What an epoch has seen so far; the loss and correct count stay on the device (no syncs)."""

    def running(self, world: World, first_step: float | None, steps: Steps) -> Running:
        """The whole epoch's figures, summed over every rank."""
        loss, correct, samples, tokens, padded, squares = ddp.summed(
            world,
            [
                self.loss.item(),
                self.correct.item(),
                self.samples,
                self.tokens,
                self.padded,
                self.squares,
            ],
            self.loss.device,
        )
        return Running(
            loss / samples,
            correct / samples,
            int(samples),
            int(tokens),
            int(padded),
            int(squares),
            first_step,
            steps.learning_rates,
            *steps.norms(),
        )

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.samples = self.tokens = self.padded = self.squares = 0

    def add(self, batch: dict, loss: torch.Tensor, logits: torch.Tensor, labels) -> None:
        self.loss += loss.detach()
        self.correct += (logits.argmax(-1) == labels).sum()
        self.samples += len(labels)
        self.tokens += batch["tokens"]
        self.padded += batch["input_ids"].numel()
        self.squares += batch["token_squares"]


def epoch_row(
    running: Running, probe: Evaluation | None, val: Evaluation, seconds: float
) -> dict[str, float]:
    """One epoch's metrics; the loss ratio divides eval-mode losses (the probe's, if it has one)."""
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


def train_epoch(how: Optimizing, loader, desc: str, *, clock: CompileClock) -> Running:
    """One pass over `loader`. Each micro-batch's summed loss is divided by the rows a full window
    holds (batch_size x grad_accum_steps x ranks); a window that ends up shorter (the epoch's last,
    or a short batch inside it) has its gradient rescaled to the mean over the rows it really had.
    With several ranks DDP averages their gradients once per window, so each rank's loss counts
    `ranks` times, and a window's rows are those of the global batches (batches.py RankShare)."""
    model, cfg, device, world = how.model, how.cfg, how.device, how.world
    model.train()
    tally, steps, first_step, window = Tally(device), Steps(), None, 0
    accum, n = cfg.grad_accum_steps, len(loader)
    full = cfg.batch_size * accum * world.size
    bar = tqdm(loader, desc=desc, disable=not cfg.progress, leave=False, mininterval=1.0)
    for i, batch in enumerate(bar, start=1):
        interrupts.check()
        inputs, labels = to_device(batch, device, model)
        closes = i % accum == 0 or i == n  # the window's last micro-batch: an optimizer step
        # times nothing unless train.compile; DDP all-reduces only on a window's last backward
        with clock.timing(tuple(inputs["input_ids"].shape)), accumulating(model, closes):
            autocast = how.dtype is not None
            with torch.autocast(device.type, dtype=how.dtype or torch.float32, enabled=autocast):
                logits = model(**inputs).logits
            loss = F.cross_entropy(logits.float(), labels, reduction="sum")
            how.scaler.scale(loss * world.size / full).backward()
        tally.add(batch, loss, logits, labels)
        window += global_rows(loader, i) or len(labels)
        if closes:
            if window != full:
                scale_gradients(model, full / window)
            steps.add(*step(model, how.optimizer, how.scheduler, how.scaler, cfg.max_grad_norm))
            window = 0
            if first_step is None:
                if device.type == "cuda":  # once: the first step's real end, not its launch
                    torch.cuda.synchronize(device)
                first_step = time.perf_counter()
        if i % 50 == 0 or i == n:  # one sync per 50 steps: progress and a NaN check
            where = f"{desc}, step {i}"
            check_progress(bar, tally.loss, tally.correct, tally.samples, where, world)
    return tally.running(world, first_step, steps)


def global_rows(loader, i: int) -> int | None:
    """Rows of the i-th global batch (1-based) when this rank trains on a share of each."""
    rows = getattr(loader.batch_sampler, "global_rows", None)
    return rows[i - 1] if rows else None
