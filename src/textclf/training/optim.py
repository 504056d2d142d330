"""The optimizer and learning-rate schedule a run asks for (train.optimizer, train.schedule).

AdamW decouples weight decay; `adam` is torch's Adam, where weight_decay is an L2 term added to the
gradient (the notebooks' Keras and PyTorch Adam ran without any). Either way biases and LayerNorm
weights get none, and frozen parameters never reach the optimizer. Schedules are transformers' own,
after `warmup_ratio` of linear warmup from 0.
"""

from __future__ import annotations

import math

import torch
from transformers import get_scheduler

from textclf.config import TrainConfig

_SCHEDULES = {"linear": "linear", "constant": "constant_with_warmup", "cosine": "cosine"}


def make_optimizer(
    model: torch.nn.Module, cfg: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    no_decay = {
        id(p) for m in model.modules() if "norm" in type(m).__name__.lower() for p in m.parameters()
    }
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if name.endswith("bias") or id(p) in no_decay else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # fused kernels on CUDA and CPU (as Trainer's default adamw_torch_fused): one pass over all
    # parameters
    return kind(
        groups,
        lr=cfg.learning_rate,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        eps=cfg.adam_eps,
        fused=device.type in ("cuda", "cpu"),
    )


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, batches_per_epoch: int):
    total = math.ceil(batches_per_epoch / cfg.grad_accum_steps) * cfg.epochs
    return get_scheduler(
        _SCHEDULES[cfg.schedule],
        optimizer,
        num_warmup_steps=int(cfg.warmup_ratio * total),
        num_training_steps=total,
    )
