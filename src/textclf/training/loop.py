"""The training loop, in plain PyTorch: it imports neither mlflow nor optuna, and reports through
the callables it is given.

AdamW or Adam with a warmup schedule (optim.py), gradient clipping and accumulation (each optimizer
step's gradient is the mean over the rows of its micro-batches), autocast on GPU, early stopping on
validation loss (or accuracy, train.monitor) with the best epoch's weights restored at the end. Each
epoch's train loss/accuracy are measured by the same evaluation code as validation, on a fixed
sample of training rows (`train_probe`), so their ratio compares like with like; the running
train-mode figures are kept as `train_loss_running` / `train_accuracy_running`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from textclf.config import TrainConfig
from textclf.training import ddp
from textclf.training.checkpoint import Parts, generator_of, load, restore, rng_state, snapshot
from textclf.training.compiled import compiled
from textclf.training.ddp import SOLO, World
from textclf.training.device import autocast_dtype
from textclf.training.epoch import Optimizing, Running, epoch_row, train_epoch
from textclf.training.evaluate import Evaluation, evaluate
from textclf.training.optim import make_optimizer, make_schedule

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


@dataclass
class Fitting:
    """One fit in progress: how it steps, where it stands, and the best weights so far."""

    how: Optimizing
    parts: Parts  # what a checkpoint holds
    result: FitResult = field(default_factory=FitResult)
    best_score: float = math.inf  # the monitored score of the kept epoch, lower is better
    best_state: dict[str, torch.Tensor] | None = None  # a CPU copy of what trains, at that epoch
    done: int = 0  # epochs finished (a resumed fit starts after them)
    start: float = field(default_factory=time.perf_counter)


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
    world: World = SOLO,
) -> FitResult:
    """Train for cfg.epochs; with `checkpoints`, resume from the newest complete checkpoint there
    and save one after every epoch (checkpoint.py): a resumed run ends bit-identical to an
    uninterrupted one on CPU. A non-finite loss in epoch 1 raises FloatingPointError; later, it ends
    training at the best epoch so far. With several ranks (`world`), each trains on its share of
    every batch in DistributedDataParallel, all score every evaluation together, rank 0 alone
    reports and writes checkpoints, and every rank takes the same decisions (ddp.py)."""
    run = start_fit(model, train, cfg, device, checkpoints, world)
    with compiled(model, cfg.compile, device) as (forward, clock):  # forward: model unless compile
        stepping = dataclasses.replace(run.how, model=ddp.wrap(forward, device, world))
        for epoch in range(run.done + 1, cfg.epochs + 1):
            epoch_start = time.perf_counter()
            try:
                running = train_epoch(stepping, train, f"epoch {epoch}/{cfg.epochs}", clock=clock)
                steps_end = time.perf_counter()
                check = validate(run.how, val, epoch)
            except FloatingPointError as e:
                if run.best_state is None:  # nothing good to fall back on
                    raise
                kept = run.result.best_epoch
                run.result.diverged = f"{str(e).split('; lower')[0]}; kept epoch {kept}"
                break
            count(run.result, running, steps_end - epoch_start, run.start)
            probe = (
                evaluate(model, train_probe, device, run.how.dtype, desc="probe", world=world)
                if train_probe is not None  # a rank may hold none of its batches
                else None
            )
            row = epoch_row(running, probe, check, time.perf_counter() - epoch_start)
            end_epoch(run, epoch, row, check, probe, log)
            if checkpoints is not None and run.best_state is not None:
                save_checkpoint(run, checkpoints, epoch, world)
            # rank 0 reports; a prune there ends every rank
            told = functools.partial(report, run.result.best(), epoch) if report else None
            ddp.follow_main(world, told)
            if run.result.stopped_early:
                break
        run.result.compile_time_s = clock.seconds()
    if run.best_state is not None:  # the kept epoch's weights (None only when no epoch ran)
        model.load_state_dict(run.best_state, strict=False)
    run.result.train_time_s = time.perf_counter() - run.start
    return run.result


def start_fit(
    model: torch.nn.Module,
    train: DataLoader,
    cfg: TrainConfig,
    device: torch.device,
    checkpoints: Path | None,
    world: World = SOLO,
) -> Fitting:
    """The model on its device with its optimizer, schedule and scaler, resumed from the newest
    complete checkpoint in `checkpoints` if there is one (every rank reads rank 0's)."""
    dtype = autocast_dtype(cfg.precision, device)
    model.to(device)
    optimizer = make_optimizer(model, cfg, device)
    scheduler = make_schedule(optimizer, cfg, len(train))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    how = Optimizing(model, optimizer, scheduler, scaler, cfg, device, dtype, world)
    run = Fitting(how, Parts(model, optimizer, scheduler, scaler, generator_of(train)))
    if checkpoints is not None and (found := load(checkpoints)):
        run.done, run.best_score, run.best_state = restore(
            found, run.parts, run.result, device, world.rank
        )
        # it had ended: only the test evaluation is left
        run.done = cfg.epochs if run.result.stopped_early else run.done
    return run


def validate(how: Optimizing, val: DataLoader, epoch: int) -> Evaluation:
    """The epoch's validation; FloatingPointError when its loss is not finite."""
    check = evaluate(
        how.model, val, how.device, how.dtype, how.cfg.progress, desc="val", world=how.world
    )
    if not math.isfinite(check.loss):
        raise FloatingPointError(
            f"validation loss is {check.loss} after epoch {epoch}; lower "
            "train.learning_rate or use train.precision=fp32"
        )
    return check


def end_epoch(
    run: Fitting,
    epoch: int,
    row: dict[str, float],
    check: Evaluation,
    probe: Evaluation | None,
    log: LogFn,
) -> None:
    """The epoch's row in the history (and logged); its weights kept if the monitored score
    improved by more than min_delta, else early stopping counts it."""
    cfg, result = run.how.cfg, run.result
    result.history.append(row)
    log(row, epoch)
    if (score := monitored(row, cfg.monitor)) < run.best_score - cfg.min_delta:
        run.best_score, result.best_epoch = score, epoch
        run.best_state = _trainable_state(run.how.model)  # a CPU copy of what trains
        result.best_val, result.best_probe = check, probe
    elif cfg.patience and epoch - result.best_epoch >= cfg.patience:
        result.stopped_early = True


def save_checkpoint(run: Fitting, directory: Path, epoch: int, world: World) -> None:
    """Rank 0 writes the checkpoint, with every rank's random state (each rank's dropout goes on
    where it was after a resume)."""
    states = ddp.gathered(world, rng_state())
    if world.main and run.best_state is not None:
        snapshot(directory, epoch, run.parts, run.result, run.best_score, run.best_state, states)


def monitored(row: dict[str, float], monitor: str) -> float:
    """The epoch's score for early stopping, lower is better: val loss, or minus val accuracy."""
    return row["val_loss"] if monitor == "val_loss" else -row["val_accuracy"]


def count(result: FitResult, running: Running, step_time_s: float, fit_start: float) -> None:
    result.step_time_s += step_time_s
    result.samples += running.samples
    result.tokens += running.tokens
    result.padded_tokens += running.padded_tokens
    result.token_squares += running.token_squares
    result.learning_rates += running.learning_rates
    if not result.history and running.first_step is not None:
        result.first_step_s = running.first_step - fit_start


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad
    }
