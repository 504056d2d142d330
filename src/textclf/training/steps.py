"""One optimizer step of the training loop (loop.py) and what the steps of an epoch applied: the
learning rate after warmup and decay, and the gradient norm before clipping. Plain PyTorch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from textclf.training import ddp
from textclf.training.ddp import World


def check_progress(
    bar, loss_sum: torch.Tensor, correct: torch.Tensor, samples: int, where: str, world: World
) -> None:
    """The progress bar's figures; FloatingPointError on every rank when any rank's running loss
    is not finite (so that all of them stop at the same step)."""
    mean = loss_sum.item() / samples
    if not ddp.all_true(world, math.isfinite(mean), loss_sum.device):
        raise FloatingPointError(
            f"training loss is {mean} at {where}; lower "
            "train.learning_rate or use train.precision=fp32"
        )
    bar.set_postfix(loss=f"{mean:.4f}", acc=f"{correct.item() / samples:.3f}")


@dataclass
class Steps:
    """What one epoch's optimizer steps applied: the learning rates (host floats) and gradient
    norms (device tensors, read once at the end of the epoch: no sync per step)."""

    learning_rates: list[float] = field(default_factory=list)
    grad_norms: list[torch.Tensor] = field(default_factory=list)

    def add(self, learning_rate: float, grad_norm: torch.Tensor) -> None:
        self.learning_rates.append(learning_rate)
        self.grad_norms.append(grad_norm)

    def norms(self) -> tuple[float, float]:
        """(mean, max) over the finite norms: a step fp16's loss scaler skipped has an inf one."""
        norms = torch.stack(self.grad_norms).float()
        finite = norms[torch.isfinite(norms)]
        return (finite.mean().item(), finite.max().item()) if len(finite) else (math.nan, math.nan)


@torch.no_grad()
def scale_gradients(model: torch.nn.Module, factor: float) -> None:
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(factor)


def step(model, optimizer, scheduler, scaler, max_grad_norm: float) -> tuple[float, torch.Tensor]:
    """One optimizer step; (the learning rate it applied, the gradient norm before clipping)."""
    scaler.unscale_(optimizer)  # the norm of the true gradient (a no-op without fp16's scaler)
    params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
    if max_grad_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    learning_rate = optimizer.param_groups[0]["lr"]
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return learning_rate, norm.detach()
