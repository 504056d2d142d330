"""Where a run's checkpoints go (`<train.checkpoint_dir>/<run id>/`) and whether a run can be
resumed: the directory must be writable before training starts, and a resumed run must have the
checkpointed run's config (what it trains on and how; where it logs may differ)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from textclf.config import Config, TrainConfig
from textclf.errors import InputError
from textclf.training import checkpoint

# what may differ between a run and its resumption: where things go, not what is trained
_RESUME_FREE = ("tracking.", "train.checkpoint", "train.progress", "train.num_workers")


def check_checkpoint_dir(train: TrainConfig) -> None:
    """A checkpoint directory that cannot be written fails here, not after the first epoch."""
    if not train.checkpoint:
        return
    path = Path(train.checkpoint_dir)
    where = f"{train.where('train.checkpoint_dir')}: train.checkpoint_dir: {path}"
    if path.exists() and not path.is_dir():
        raise InputError([f"{where} is a file; name a directory"])
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            [
                f"{where} cannot be created ({existing} is not a writable directory); "
                "name a writable directory"
            ]
        )


def checkpoint_dir(cfg: Config, run_id: str, resume: str | None, main: bool = True) -> Path | None:
    """Where the run's checkpoints go (None without checkpoints); the main process (rank 0 of
    several) creates it with the config it holds."""
    if not (cfg.train.checkpoint or resume):
        return None
    directory = _checkpoints_of(cfg, run_id)
    if main and not resume:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(_fixed(cfg), default=str))
    return directory


def check_resumable(cfg: Config, run_id: str) -> None:
    directory = _checkpoints_of(cfg, run_id)
    where = f"--resume {run_id}"
    if not (directory / "config.json").is_file() or checkpoint.load(directory) is None:
        raise InputError(
            [
                f"{where}: no complete checkpoint in {directory}; was the run started "
                "with train.checkpoint=true and the same train.checkpoint_dir?"
            ]
        )
    saved = json.loads((directory / "config.json").read_text())
    now = json.loads(json.dumps(_fixed(cfg), default=str))
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    if changed:
        raise InputError(
            [
                f"{where}: the config differs from the checkpointed run's in "
                f"{', '.join(changed)}; resume with the run's own config (its "
                "config.yaml artifact)"
            ]
        )


def _checkpoints_of(cfg: Config, run_id: str) -> Path:
    return Path(cfg.train.checkpoint_dir) / run_id


def _fixed(cfg: Config) -> dict:
    return {k: v for k, v in cfg.flat().items() if not k.startswith(_RESUME_FREE)}
