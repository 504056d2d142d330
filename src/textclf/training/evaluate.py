"""Scoring a model on a loader: loss, accuracy, every row's prediction and probabilities, in the
loader's row order (batches are length-sorted for speed and mapped back). Plain PyTorch, as
loop.py."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from textclf import interrupts
from textclf.training import ddp
from textclf.training.ddp import SOLO, World


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    # per row, in the loader's dataset order (not the length-sorted batch order)
    predictions: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray | None = None  # rows x classes, float32


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    dtype: torch.dtype | None,
    progress: bool = False,
    desc: str = "eval",
    world: World = SOLO,
) -> Evaluation:
    """With several ranks, each scores its share of the batches (data/batches.py EvalShare) and
    every rank gets all of them back in batch order: the same rows, each once, in the same batches
    and summed in the same order as one process would, so every figure is that process's."""
    model.eval()
    model.to(device)
    scored = []  # per batch: (summed loss, probabilities, labels)
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, mininterval=1.0):
        interrupts.check()
        inputs, y = to_device(batch, device, model)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(**inputs).logits.float()
        scored.append((F.cross_entropy(logits, y, reduction="sum"), logits.softmax(-1), y))
    batches, scored = _all_batches(loader, scored, world)
    loss_sum = torch.zeros((), device=scored[0][0].device if scored else device)
    for loss, _, _ in scored:
        loss_sum += loss
    # back to dataset order (batches come sorted by length): per-row results pair up across runs
    order = np.argsort(np.fromiter(itertools.chain.from_iterable(batches), dtype=np.int64))
    probs, truth = (
        torch.cat([p for _, p, _ in scored]).cpu().numpy()[order],
        torch.cat([y for _, _, y in scored]).cpu().numpy()[order],
    )
    predicted = probs.argmax(-1)
    return Evaluation(
        loss_sum.item() / len(truth), float((predicted == truth).mean()), predicted, truth, probs
    )


def _all_batches(loader: DataLoader, scored: list, world: World) -> tuple[list, list]:
    """(every batch's rows, every batch's scores) in batch order: this rank's alone, or with
    several ranks everyone's, gathered (on the CPU) by their position among all batches."""
    sampler = loader.batch_sampler
    if sampler is None:
        raise TypeError("evaluate reads a DataLoader with a batch sampler (data/features.py)")
    if not world.spread:
        return list(sampler), scored
    batches, positions = getattr(sampler, "batches", None), getattr(sampler, "mine", None)
    if batches is None or positions is None:
        raise TypeError("with several ranks, evaluate reads a rank's share (batches.EvalShare)")
    mine = [
        (position, loss.cpu(), p.cpu(), y.cpu())
        for position, (loss, p, y) in zip(positions, scored, strict=True)
    ]
    everyone = sorted(itertools.chain.from_iterable(ddp.gathered(world, mine)), key=lambda s: s[0])
    return batches, [s[1:] for s in everyone]


def to_device(
    batch: dict, device: torch.device, model: torch.nn.Module
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    # no mask: an unpadded batch (features.Collate)
    inputs = {
        k: batch[k].to(device, non_blocking=True)
        for k in ("input_ids", "attention_mask")
        if batch[k] is not None
    }
    if "attention_mask" in inputs and getattr(model, "takes_4d_mask", False):
        # the mask transformers would build itself (model/build.py takes_4d_mask), made here without
        # its `padding_mask.all()` check: no host-device sync in a padded batch's forward
        inputs["attention_mask"] = inputs["attention_mask"][:, None, None, :].bool()
    return inputs, batch["labels"].to(device, non_blocking=True)
