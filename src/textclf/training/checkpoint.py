"""Resumable training state, saved at the end of each epoch: safetensors for every tensor (weights,
optimizer moments, best weights so far, RNG states) and JSON for the rest. No pickle.
`snapshot`/`restore` decide what a checkpoint holds (model, optimizer, scheduler, scaler, best
weights, the batch-order and dropout RNGs, the loop's counters); `save`/`load` how it is stored.

A save writes `epoch-N.safetensors`, then `epoch-N.json` holding the tensor file's SHA-256; each
through a temporary file and an atomic rename. The JSON is the commit mark: a save killed midway
leaves either no JSON or a hash that does not match, and `load` falls back to the newest complete
checkpoint (or none).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


@dataclass
class Parts:
    """Everything whose state a checkpoint holds, besides the loop's own counters."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # the training batches' order


def snapshot(
    directory: Path,
    epoch: int,
    parts: Parts,
    result,
    best_loss: float,
    best_state: dict[str, torch.Tensor],
    ranks: Sequence[dict[str, torch.Tensor]] = (),
) -> None:
    """`ranks`: every rank's random state (rng_state), rank 0's first, when several train."""
    optimizer = parts.optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in parts.model.state_dict().items()}
    tensors |= {f"best.{k}": v for k, v in best_state.items()}
    tensors |= {
        f"optimizer.{i}.{k}": v for i, state in optimizer["state"].items() for k, v in state.items()
    }
    tensors |= {"rng.torch": torch.get_rng_state(), "rng.batches": parts.generator.get_state()}
    tensors |= {f"rng.{k}.r{r}": v for r, s in enumerate(ranks) if r for k, v in s.items()}
    if torch.cuda.is_available():
        tensors |= {
            f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())
        }
    meta = {
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_loss": best_loss,
        "stopped_early": result.stopped_early,
        "counters": [
            result.step_time_s,
            result.samples,
            result.tokens,
            result.padded_tokens,
            result.first_step_s,
            result.token_squares,
        ],
        "learning_rates": result.learning_rates,
        "optimizer_groups": optimizer["param_groups"],
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
    }
    save(directory, epoch, tensors, meta)


def rng_state() -> dict[str, torch.Tensor]:
    """This process's random state: torch's, and its current GPU's."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore(found, parts: Parts, result, device: torch.device, rank: int = 0):
    """Load a checkpoint into the parts and `result`; returns (epochs done, best score, weights).
    Rank r > 0 of several takes its own random state."""
    tensors, meta = found

    def take(prefix: str) -> dict[str, torch.Tensor]:
        return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}

    parts.model.load_state_dict(take("model."))
    moments: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in take("optimizer.").items():
        index, name = key.split(".", 1)
        moments.setdefault(int(index), {})[name] = value
    parts.optimizer.load_state_dict({"state": moments, "param_groups": meta["optimizer_groups"]})
    parts.scheduler.load_state_dict(meta["scheduler"])
    parts.scaler.load_state_dict(meta["scaler"])
    parts.generator.set_state(tensors["rng.batches"])
    torch.set_rng_state(tensors["rng.torch"])  # dropout continues where the killed run was
    if device.type == "cuda" and "rng.cuda.0" in tensors:
        torch.cuda.set_rng_state_all(
            [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count())]
        )
    if f"rng.torch.r{rank}" in tensors:
        torch.set_rng_state(tensors[f"rng.torch.r{rank}"])
    if device.type == "cuda" and f"rng.cuda.r{rank}" in tensors:
        torch.cuda.set_rng_state(tensors[f"rng.cuda.r{rank}"])
    result.history, result.best_epoch, result.stopped_early = (
        meta["history"],
        meta["best_epoch"],
        meta["stopped_early"],
    )
    result.learning_rates = meta.get("learning_rates", [])  # none in checkpoints before them
    # checkpoints from before token_squares
    counters = meta["counters"] + [0] * (6 - len(meta["counters"]))
    (
        result.step_time_s,
        result.samples,
        result.tokens,
        result.padded_tokens,
        result.first_step_s,
        result.token_squares,
    ) = counters
    return meta["epoch"], meta["best_loss"], take("best.")


def generator_of(loader) -> torch.Generator:
    """The generator that orders a training loader's batches (the loader's, its batch sampler's or
    that sampler's row sampler's)."""
    sampler = loader.batch_sampler
    for holder in (loader, sampler, getattr(sampler, "sampler", None)):
        generator = getattr(holder, "generator", None)
        if isinstance(generator, torch.Generator):
            return generator
    raise TypeError("the training loader's batches have no generator to checkpoint")


def save(
    directory: Path, epoch: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"epoch-{epoch}.safetensors"
    _atomic(
        weights,
        lambda f: save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, f),
    )
    meta = {**meta, "epoch": epoch, "sha256": _sha256(weights)}
    mark = directory / f"epoch-{epoch}.json"
    _atomic(mark, lambda f: Path(f).write_text(json.dumps(meta)))
    for old in directory.glob("epoch-*.*"):  # keep the newest complete checkpoint only
        if _epoch_of(old) < epoch:
            old.unlink(missing_ok=True)
    return mark


def load(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The newest checkpoint whose tensor file matches its commit mark; None when there is none."""
    for mark in sorted(directory.glob("epoch-*.json"), key=_epoch_of, reverse=True):
        try:
            meta = json.loads(mark.read_text())
            weights = mark.with_suffix(".safetensors")
            if _sha256(weights) == meta["sha256"]:
                return load_file(weights), meta
        except (OSError, ValueError, KeyError):
            continue  # torn or half-written: never used
    return None


def _atomic(path: Path, write) -> None:
    """`write(temporary)`, then a rename: readers see the old file or the whole new one. A failed
    write (a full disk) removes its temporary file and raises OSError naming `path`."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        temporary = f.name
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as e:
        raise OSError(e.errno, f"{path}: {e.strerror or e}") from e
    except Exception as e:  # safetensors reports I/O errors as SafetensorError "... (os error 28)"
        code = re.search(r"os error (\d+)", str(e))
        if not code:
            raise
        raise OSError(int(code.group(1)), f"{path}: {os.strerror(int(code.group(1)))}") from e
    finally:
        Path(temporary).unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _epoch_of(path: Path) -> int:
    try:
        return int(path.name.split(".")[0].removeprefix("epoch-"))
    except ValueError:
        return -1
