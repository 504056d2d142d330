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
) -> Evaluation:
    model.eval()
    model.to(device)
    loss_sum = torch.zeros((), device=device)
    probabilities, labels = [], []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, mininterval=1.0):
        interrupts.check()
        inputs, y = to_device(batch, device, model)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(**inputs).logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        probabilities.append(logits.softmax(-1))
        labels.append(y)
    # back to dataset order (batches come sorted by length): per-row results pair up across runs
    if loader.batch_sampler is None:
        raise TypeError("evaluate reads a DataLoader with a batch sampler (data/features.py)")
    order = np.argsort(
        np.fromiter(itertools.chain.from_iterable(loader.batch_sampler), dtype=np.int64)
    )
    probs, truth = (
        torch.cat(probabilities).cpu().numpy()[order],
        torch.cat(labels).cpu().numpy()[order],
    )
    predicted = probs.argmax(-1)
    return Evaluation(
        loss_sum.item() / len(truth), float((predicted == truth).mean()), predicted, truth, probs
    )


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
