"""Token ids for each split (tokenized once before training, through the on-disk cache in tokens.py)
and dynamically padded batches, optionally grouped by length."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from textclf.data import tokens
from textclf.data.batches import (
    EvalShare,
    GroupedBatches,
    RankShare,
    batch_sizes,
    by_length,
    random_batches,
)
from textclf.data.encoding import encode_ids
from textclf.data.splits import Splits


@dataclass(frozen=True)
class Encoded:
    input_ids: list  # one id sequence per text, truncated to max_length, with special tokens
    labels: np.ndarray

    def lengths(self) -> np.ndarray:
        return np.fromiter(map(len, self.input_ids), dtype=np.int64, count=len(self.input_ids))


@dataclass(frozen=True)
class Loaders:
    train: DataLoader
    val: DataLoader
    test: DataLoader
    # a fixed sample of training rows, as many as val, evaluated like val each epoch
    train_probe: DataLoader
    tokenize_time_s: float = 0.0
    token_cache_hit: bool = False  # every text's ids came from the cache


def encode(texts: Sequence[str], labels: np.ndarray, tokenizer, max_length: int) -> Encoded:
    """Tokenized in memory, without the cache (encoding.encode_ids: a chunk at a time)."""
    lengths, flat = encode_ids(texts, tokenizer, max_length)
    ids = np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []
    return Encoded(ids, np.asarray(labels, dtype=np.int64))


def make_loaders(
    splits: Splits,
    tokenizer,
    *,
    max_length: int,
    batch_size: int,
    eval_batch_size: int,
    seed: int,
    device: torch.device,
    num_workers: int | None = 0,
    cache_length: int | None = None,
    group_by_length: bool = False,
    compile: bool = False,
    rank: int = 0,
    world: int = 1,
) -> Loaders:
    """`cache_length` (the model's limit) turns on the token cache; None tokenizes in memory.
    `compile`: training batches padded to a multiple of 64 (at most max_length), always with a mask:
    few shapes, one graph each. `world` > 1: this rank's share of every batch (batches.py)."""
    start = time.perf_counter()
    encoded, misses = encode_splits(splits, tokenizer, max_length, cache_length)
    workers = (2 if device.type == "cuda" else 0) if num_workers is None else num_workers
    collate = Collate(tokenizer.pad_token_id, multiple=8 if device.type == "cuda" else 1)
    common: dict[str, Any] = dict(  # DataLoader options every loader shares
        collate_fn=collate,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    padded = Collate(tokenizer.pad_token_id, multiple=64, limit=max_length, always_mask=True)
    common_train = common | ({"collate_fn": padded} if compile else {})
    generator = torch.Generator().manual_seed(seed)  # batch order depends on train.seed only
    batches = training_batches(
        encoded["train"], batch_size, generator, group_by_length, rank, world
    )
    train = DataLoader(Rows(encoded["train"]), batch_sampler=batches, **common_train)
    encoded["train_probe"] = probe_rows(encoded["train"], len(splits.val))
    # eval order is free: batching texts of similar length wastes little compute on padding
    val, test, probe = (
        DataLoader(
            Rows(encoded[s]),
            batch_sampler=EvalShare(by_length(encoded[s].lengths(), eval_batch_size), rank, world),
            **common,
        )
        for s in ("val", "test", "train_probe")
    )
    hit = bool(cache_length) and misses == 0
    return Loaders(train, val, test, probe, time.perf_counter() - start, hit)


def encode_splits(
    splits: Splits, tokenizer, max_length: int, cache_length: int | None
) -> tuple[dict[str, Encoded], int]:
    """Each split's token ids and labels, and how many texts missed the token cache (None: no
    cache, tokenized in memory)."""
    encoded, misses = {}, 0
    for name, frame in splits.frames().items():
        if cache_length:
            done = tokens.tokenize(list(frame.text), tokenizer, max_length, cache_length)
            encoded[name] = Encoded(done.ids, np.asarray(frame.label, dtype=np.int64))
            misses += done.misses
        else:
            encoded[name] = encode(list(frame.text), frame.label.to_numpy(), tokenizer, max_length)
    return encoded, misses


def training_batches(
    encoded: Encoded,
    batch_size: int,
    generator: torch.Generator,
    grouped: bool,
    rank: int = 0,
    world: int = 1,
) -> Sampler:
    """Length-grouped or random batches of `batch_size`; with several ranks, this rank's part of
    each batch of the global plan, which every rank makes alike (batches.py)."""
    size = batch_size * world
    if grouped:
        batches: Sampler = GroupedBatches(encoded.lengths(), size, generator)
    else:
        batches = random_batches(len(encoded.input_ids), size, generator)
    if world == 1:
        return batches
    return RankShare(batches, batch_sizes(len(encoded.input_ids), size), generator, rank, world)


def probe_rows(train: Encoded, count: int) -> Encoded:
    """The loss ratio's train side: a fixed sample of training rows as large as the validation set
    (the same every epoch and for every train.seed)."""
    sample = np.sort(np.random.default_rng(0).permutation(len(train.input_ids))[:count])
    return Encoded([train.input_ids[i] for i in sample], train.labels[sample])


class Rows(torch.utils.data.Dataset):
    def __init__(self, encoded: Encoded):
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded.input_ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.encoded.input_ids[i], int(self.encoded.labels[i])


class Collate:
    """Pad a batch to its longest text (rounded up to `multiple` for tensor cores, but not past
    `limit`); the attention mask is None when no row is padded, unless `always_mask` (a compiled
    model: one graph per shape)."""

    def __init__(
        self, pad_id: int, multiple: int = 1, limit: int | None = None, always_mask: bool = False
    ):
        self.pad_id, self.multiple, self.limit, self.always_mask = (
            pad_id,
            multiple,
            limit,
            always_mask,
        )

    def __call__(self, items: list[tuple[Sequence[int], int]]) -> dict[str, torch.Tensor | int]:
        # one scatter into a preallocated array instead of a tensor per row: ~4x less time per batch
        lengths = np.fromiter((len(ids) for ids, _ in items), dtype=np.int64, count=len(items))
        width = -(-int(lengths.max()) // self.multiple) * self.multiple
        if self.limit is not None:
            width = max(min(width, self.limit), int(lengths.max()))
        mask = np.arange(width) < lengths[:, None]
        input_ids = np.full((len(items), width), self.pad_id, dtype=np.int64)
        input_ids[mask] = np.concatenate([np.asarray(ids, dtype=np.int64) for ids, _ in items])
        labels = torch.tensor([y for _, y in items], dtype=torch.long)
        # no padding, no mask: transformers' BERT-family models check `attention_mask.all()` on
        # every forward to skip the mask, a host-device sync per step on CUDA; without a mask there
        # is nothing to check
        padded = self.always_mask or lengths.min() < width
        attention = torch.from_numpy(mask.astype(np.int64)) if padded else None
        # real tokens (and their squares, for the attention FLOPs), counted without a device sync
        batch: dict[str, Any] = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": attention,
            "labels": labels,
            "tokens": int(lengths.sum()),
            "token_squares": int((lengths**2).sum()),
        }
        return batch


def decoded_samples(
    loader: DataLoader, tokenizer, label_names: tuple[str, ...], count: int = 5
) -> str:
    """The first rows of `loader` as the model sees them (special tokens, truncation), with their
    labels: `label<TAB>tokens<TAB>decoded` per line, for a run's samples.txt."""
    lines = []
    rows = loader.dataset
    if not isinstance(rows, Rows):
        raise TypeError(f"decoded_samples reads textclf's Rows, not {type(rows).__name__}")
    for i in range(min(count, len(rows))):
        ids, label = rows[i]
        decoded = tokenizer.decode(list(ids), skip_special_tokens=False)
        lines.append(f"{label_names[label]}\t{len(ids)}\t{' '.join(decoded.split())}")
    return "\n".join(lines) + "\n"
