"""Several processes training one model (torch.distributed, DistributedDataParallel): which rank
this process is, the model wrapped for the training steps, and the few collectives the loop needs
so that every rank takes the same decisions. Plain torch, as the rest of training/: the ranks learn
everything from each other. A World of size 1 is one process, and every collective here is then a
no-op, so the single-process loop runs the same code.

Ranks are started by torch.distributed.run's launcher (run/launch.py), which sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; NCCL on GPUs, gloo on CPU. Collectives time out after
`timeout_s`: a rank that hangs fails the others instead of holding them forever.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")
# a collective waits this long for a rank that neither answers nor dies (one that dies is seen at
# once: the launcher stops the others)
TIMEOUT_S = 600.0


class StoppedByMain(Exception):
    """Rank 0 ended the run (a pruned trial, a failure only it saw); the other ranks end too."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that talks to MLflow and Optuna."""
        return self.rank == 0

    @property
    def spread(self) -> bool:
        return self.size > 1


SOLO = World()


def launched() -> bool:
    """Whether this process is a rank that torch.distributed.run started."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ


def join(device_type: str, timeout_s: float | None = None) -> World:
    """Start this rank's process group (NCCL on a GPU, gloo on CPU); a GPU rank takes the GPU
    its LOCAL_RANK names."""
    if device_type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if device_type == "cuda" else "gloo"
    seconds = timeout_s or float(os.environ.get("TEXTCLF_COLLECTIVE_TIMEOUT_S", TIMEOUT_S))
    dist.init_process_group(backend, timeout=timedelta(seconds=seconds))
    return World(dist.get_rank(), dist.get_world_size())


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device, world: World) -> torch.nn.Module:
    """`model` in DistributedDataParallel for the training steps (itself in one process). DDP
    waits for a gradient of every trainable parameter; where one gets none (a probe backward
    finds them), it must look for unused parameters each step, which costs a pass over the
    graph, so only then."""
    if not world.spread:
        return model
    unused = unused_parameters(model, device)
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=bool(unused),
        # position ids and the like: constants, the same on every rank (synced once, at init)
        forward_sync_buffers=False,
    )


def unused_parameters(model: torch.nn.Module, device: torch.device) -> list[str]:
    """Trainable parameters that get no gradient from a forward and backward pass of a tiny
    batch (the RNG state is kept, and the gradients thrown away)."""
    vocabulary = int(getattr(model.config, "vocab_size", 2))
    ids = torch.full((2, 8), min(100, vocabulary - 1), dtype=torch.long, device=device)
    labels = torch.zeros(2, dtype=torch.long, device=device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.zero_grad(set_to_none=True)
    return unused


def accumulating(model: torch.nn.Module, closes: bool) -> contextlib.AbstractContextManager:
    """DDP's no_sync on a micro-batch that does not close its optimizer step: its gradients stay
    local, all-reduced once with the step's last micro-batch."""
    if isinstance(model, DistributedDataParallel) and not closes:
        return model.no_sync()
    return contextlib.nullcontext()


def all_true(world: World, flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on every rank."""
    if not world.spread:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def summed(world: World, values: list[float], device: torch.device) -> list[float]:
    """Each value summed over the ranks (counts, losses)."""
    if not world.spread:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def gathered(world: World, value: T) -> list[T]:
    """Every rank's `value`, in rank order (picklable objects)."""
    if not world.spread:
        return [value]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def from_main(world: World, value: T) -> T:
    """Rank 0's `value` on every rank."""
    if not world.spread:
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def follow_main(world: World, action: Callable[[], None] | None) -> None:
    """Rank 0 runs `action` (which may raise to end the run: a pruned trial); the other ranks
    learn whether it did and then end too (StoppedByMain)."""
    if not world.spread:
        if action is not None:
            action()
        return
    failure: BaseException | None = None
    if world.main and action is not None:
        try:
            action()
        except BaseException as e:
            failure = e
    said = from_main(world, None if failure is None else f"{type(failure).__name__}: {failure}")
    if failure is not None:
        raise failure
    if said is not None:
        raise StoppedByMain(said)
