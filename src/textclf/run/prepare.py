"""Everything a run needs before its MLflow run exists: the device and checkpoints checked, the data
loaded and split, the model built (head, freeze / peft), the rows tokenized. Anything wrong is
InputError (exit 2), and nothing has been created yet."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import transformers

from textclf.config import Config
from textclf.data import load_splits
from textclf.data.features import Loaders, make_loaders
from textclf.data.source import Source
from textclf.data.splits import Splits
from textclf.model.build import Backbone, build_classifier, count_params, load_backbone
from textclf.tracking import runs
from textclf.training.ddp import SOLO, World
from textclf.training.device import check_device, rank_device, use_cpu_threads
from textclf.training.resume import check_checkpoint_dir, check_resumable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs before its MLflow run exists."""

    splits: Splits
    backbone: Backbone
    model: torch.nn.Module
    loaders: Loaders
    device: torch.device


def prepare(
    cfg: Config, resume: str | None, source: Source | None = None, world: World = SOLO
) -> Prepared:
    """Check the device and checkpoints, load and split the data, build the model, tokenize:
    InputError (exit 2) for anything wrong, before the MLflow run exists. One rank of several
    (`world`) trains on its own GPU and on its share of the batches; the launcher ran these
    checks before it started the ranks, and tokenized for them (the token cache)."""
    device = rank_device(check_device(cfg.train), world)
    use_cpu_threads(device)
    check_checkpoint_dir(cfg.train)
    runs.check_journal_dir(cfg.tracking)
    if resume:
        check_resumable(cfg, resume)
    splits = load_splits(cfg.data, source)
    backbone = load_backbone(cfg.model, cfg.data)
    transformers.set_seed(cfg.train.seed)  # the new head's init, dropout and batch order
    model = build_classifier(backbone, splits.label_names, cfg.model)
    if world.rank:  # the same initial weights on every rank, its own dropout on each
        torch.manual_seed(cfg.train.seed + world.rank)
    t = cfg.train
    loaders = make_loaders(
        splits,
        backbone.tokenizer,
        max_length=cfg.data.max_length,
        batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size,
        seed=t.seed,
        device=device,
        num_workers=t.num_workers,
        cache_length=cache_length(backbone, cfg) if cfg.data.token_cache else None,
        group_by_length=t.group_by_length,
        compile=t.compile,
        rank=world.rank,
        world=world.size,
    )
    trainable, total = count_params(model)
    log.info(
        "%d train / %d val / %d test rows, %d labels, %s on %s, %d/%d params trainable, "
        "effective batch %d",
        len(splits.train),
        len(splits.val),
        len(splits.test),
        len(splits.label_names),
        cfg.model.name,
        device,
        trainable,
        total,
        cfg.train.effective_batch_size(),
    )
    return Prepared(splits, backbone, model, loaders, device)


def cache_length(backbone: Backbone, cfg: Config) -> int:
    """Tokens are cached at the model's limit (capped for models without one), so every max length
    that a sweep tries slices the same cache."""
    return max(min(backbone.max_length(), 4096), cfg.data.max_length)
