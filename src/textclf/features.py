"""Token ids for each split (tokenized once, before training) and dynamically padded batches."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from textclf.data import Splits


@dataclass(frozen=True)
class Encoded:
    input_ids: list[list[int]]  # one list per text, truncated to max_length, with special tokens
    labels: np.ndarray

    def lengths(self) -> np.ndarray:
        return np.fromiter(map(len, self.input_ids), dtype=np.int64, count=len(self.input_ids))


@dataclass(frozen=True)
class Loaders:
    train: DataLoader
    val: DataLoader
    test: DataLoader


def encode(texts: Sequence[str], labels: np.ndarray, tokenizer, max_length: int) -> Encoded:
    ids = tokenizer(list(texts), truncation=True, max_length=max_length,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    return Encoded(ids, np.asarray(labels, dtype=np.int64))


def make_loaders(splits: Splits, tokenizer, max_length: int, batch_size: int, eval_batch_size: int,
                 seed: int, device: torch.device, num_workers: int = 0) -> Loaders:
    encoded = {name: encode(f.text, f.label, tokenizer, max_length) for name, f in splits.frames().items()}
    collate = Collate(tokenizer.pad_token_id, multiple=8 if device.type == "cuda" else 1)
    common = dict(collate_fn=collate, num_workers=num_workers, pin_memory=device.type == "cuda")
    generator = torch.Generator().manual_seed(seed)  # batch order depends on train.seed only
    train = DataLoader(Rows(encoded["train"]), batch_size=batch_size, shuffle=True, generator=generator,
                       **common)
    # eval order is free: batching texts of similar length wastes little compute on padding
    val, test = (DataLoader(Rows(encoded[s]), batch_sampler=by_length(encoded[s], eval_batch_size), **common)
                 for s in ("val", "test"))
    return Loaders(train, val, test)


class Rows(torch.utils.data.Dataset):
    def __init__(self, encoded: Encoded):
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded.input_ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.encoded.input_ids[i], int(self.encoded.labels[i])


def by_length(encoded: Encoded, batch_size: int) -> list[list[int]]:
    order = np.argsort(encoded.lengths(), kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]


class Collate:
    """Pad a batch to its longest text (rounded up to `multiple` for tensor cores)."""

    def __init__(self, pad_id: int, multiple: int = 1):
        self.pad_id, self.multiple = pad_id, multiple

    def __call__(self, items: list[tuple[list[int], int]]) -> dict[str, torch.Tensor | int]:
        longest = max(len(ids) for ids, _ in items)
        width = -(-longest // self.multiple) * self.multiple
        input_ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (ids, _) in enumerate(items):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
        labels = torch.tensor([y for _, y in items], dtype=torch.long)
        tokens = sum(len(ids) for ids, _ in items)  # real (unpadded) tokens, counted without a device sync
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels, "tokens": tokens}
