"""The training loop: plain PyTorch. It imports neither mlflow nor optuna; it reports through callables.

AdamW (no decay on biases and LayerNorm), linear warmup then decay, gradient clipping and accumulation,
autocast on GPU, early stopping on validation loss with the best weights restored at the end.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from textclf.checkpoint import Parts, generator_of, load, restore, snapshot
from textclf.config import TrainConfig

LogFn = Callable[[dict[str, float], int], None]  # (metrics, epoch)
ReportFn = Callable[[float, int], None]  # (val_accuracy, epoch); may raise to stop (pruning)


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    predictions: np.ndarray
    labels: np.ndarray


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    best_epoch: int = 0  # 1-based epoch of the lowest validation loss (its weights are restored)
    train_time_s: float = 0.0  # wall time of fit: training steps and per-epoch validation
    step_time_s: float = 0.0  # wall time spent in training steps only
    samples: int = 0  # training sequences processed
    tokens: int = 0  # real (unpadded) training tokens processed
    padded_tokens: int = 0  # token slots computed, padding included
    first_step_s: float = 0.0  # from the start of fit to the end of the first optimizer step
    stopped_early: bool = False

    def best(self) -> dict[str, float]:
        return self.history[self.best_epoch - 1]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32. auto: bf16 where the GPU supports it, else fp16; fp32 on CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    no_decay = {id(p) for m in model.modules() if "norm" in type(m).__name__.lower() for p in m.parameters()}
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:  # frozen parameters never reach the optimizer
            (plain if name.endswith("bias") or id(p) in no_decay else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    # fused kernels on CUDA and CPU (as Trainer's default adamw_torch_fused): one pass over all parameters
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=device.type in ("cuda", "cpu"))


def fit(model: torch.nn.Module, train: DataLoader, val: DataLoader, cfg: TrainConfig, device: torch.device,
        log: LogFn = lambda metrics, epoch: None, report: ReportFn | None = None,
        checkpoints: Path | None = None) -> FitResult:
    """Train for cfg.epochs; with `checkpoints`, resume from the newest complete checkpoint there and save
    one after every epoch (checkpoint.py): a resumed run ends bit-identical to an uninterrupted one on CPU."""
    dtype = autocast_dtype(cfg.precision, device)
    if device.type == "cuda":  # fp32 matmuls (precision=fp32, and the fp32 parts under autocast) on TF32 cores
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    model.to(device)
    optimizer = make_optimizer(model, cfg, device)
    total_steps = math.ceil(len(train) / cfg.grad_accum_steps) * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    result, best_loss, best_state, start = FitResult(), math.inf, None, time.perf_counter()
    parts = Parts(model, optimizer, scheduler, scaler, generator_of(train))
    done = 0
    if checkpoints is not None and (found := load(checkpoints)):
        done, best_loss, best_state = restore(found, parts, result, device)
        done = cfg.epochs if result.stopped_early else done  # it had ended: only the test evaluation is left
    for epoch in range(done + 1, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        loss, accuracy, counts, first_step = train_epoch(model, train, optimizer, scheduler, scaler, cfg, device,
                                                         dtype, f"epoch {epoch}/{cfg.epochs}")
        result.step_time_s += time.perf_counter() - epoch_start
        result.samples += counts[0]
        result.tokens += counts[1]
        result.padded_tokens += counts[2]
        if epoch == 1:
            result.first_step_s = first_step - start
        check = evaluate(model, val, device, dtype, progress=cfg.progress, desc="val")
        if not math.isfinite(check.loss):
            raise FloatingPointError(f"validation loss is {check.loss} after epoch {epoch}; lower "
                                     f"train.learning_rate or use train.precision=fp32")
        row = {"train_loss": loss, "train_accuracy": accuracy, "val_loss": check.loss,
               "val_accuracy": check.accuracy, "train_val_loss_ratio": loss / max(check.loss, 1e-12),
               "epoch_time_s": time.perf_counter() - epoch_start}
        result.history.append(row)
        log(row, epoch)
        if report is not None:
            report(check.accuracy, epoch)
        if check.loss < best_loss:  # restore-best-weights: keep a CPU copy of what trains
            best_loss, result.best_epoch, best_state = check.loss, epoch, _trainable_state(model)
        elif cfg.patience and epoch - result.best_epoch >= cfg.patience:
            result.stopped_early = True
        if checkpoints is not None:
            snapshot(checkpoints, epoch, parts, result, best_loss, best_state)
        if result.stopped_early:
            break
    model.load_state_dict(best_state, strict=False)
    result.train_time_s = time.perf_counter() - start
    return result


def train_epoch(model, loader, optimizer, scheduler, scaler, cfg: TrainConfig, device, dtype, desc: str):
    """One pass over `loader`; returns (mean loss, accuracy, (samples, real tokens, padded tokens), the
    perf_counter time at which the first optimizer step had finished)."""
    model.train()
    loss_sum = torch.zeros((), device=device)  # accumulated on device: no sync per step
    correct = torch.zeros((), device=device, dtype=torch.long)
    samples = tokens = padded = 0
    first_step = None
    accum, n = cfg.grad_accum_steps, len(loader)
    bar = tqdm(loader, desc=desc, disable=not cfg.progress, leave=False, mininterval=1.0)
    for i, batch in enumerate(bar, start=1):
        inputs, labels = _to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(**inputs).logits
        loss = F.cross_entropy(logits.float(), labels)
        # mean over the micro-batches of this optimizer step; the last window of an epoch may be shorter
        window = min(accum, n - (i - 1) // accum * accum)
        scaler.scale(loss / window).backward()
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(-1) == labels).sum()
        samples, tokens = samples + len(labels), tokens + batch["tokens"]
        padded += batch["input_ids"].numel()
        if i % accum == 0 or i == n:
            _step(model, optimizer, scheduler, scaler, cfg.max_grad_norm)
            if first_step is None:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)  # once: the first step's real end, not its launch
                first_step = time.perf_counter()
        if i % 50 == 0 or i == n:  # one sync per 50 steps: progress and a NaN check
            mean = loss_sum.item() / samples
            if not math.isfinite(mean):
                raise FloatingPointError(f"training loss is {mean} at {desc}, step {i}; lower "
                                         f"train.learning_rate or use train.precision=fp32")
            bar.set_postfix(loss=f"{mean:.4f}", acc=f"{correct.item() / samples:.3f}")
    return loss_sum.item() / samples, correct.item() / samples, (samples, tokens, padded), first_step


def _step(model, optimizer, scheduler, scaler, max_grad_norm: float) -> None:
    if max_grad_norm > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device, dtype: torch.dtype | None,
             progress: bool = False, desc: str = "eval") -> Evaluation:
    model.eval()
    model.to(device)
    loss_sum = torch.zeros((), device=device)
    predictions, labels = [], []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, mininterval=1.0):
        inputs, y = _to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(**inputs).logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        predictions.append(logits.argmax(-1))
        labels.append(y)
    predicted, truth = torch.cat(predictions).cpu().numpy(), torch.cat(labels).cpu().numpy()
    return Evaluation(loss_sum.item() / len(truth), float((predicted == truth).mean()), predicted, truth)


def _to_device(batch: dict, device: torch.device) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    inputs = {k: batch[k].to(device, non_blocking=True) for k in ("input_ids", "attention_mask")}
    return inputs, batch["labels"].to(device, non_blocking=True)


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
