"""Resumable training state, saved at the end of each epoch: safetensors for every tensor (weights,
optimizer moments, best weights so far, RNG states) and JSON for the rest. No pickle.

A save writes `epoch-N.safetensors`, then `epoch-N.json` holding the tensor file's SHA-256; each through a
temporary file and an atomic rename. The JSON is the commit mark: a save killed midway leaves either no
JSON or a hash that does not match, and `load` falls back to the newest complete checkpoint (or none).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


def save(directory: Path, epoch: int, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"epoch-{epoch}.safetensors"
    _atomic(weights, lambda f: save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, f))
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
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        temporary = f.name
    try:
        write(temporary)
        os.replace(temporary, path)
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
