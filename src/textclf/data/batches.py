"""Which rows go into which batch: length-grouped or random training batches, length-sorted
evaluation batches, and one rank's share of each when several processes train one model
(train.devices).

With N ranks the training batches are planned once for all of them (the same generator, the same
seed) at N x the per-rank batch size, and rank r takes the r-th of N near-equal parts of each: every
rank steps the same number of times, and together they see each row once per epoch, as one process
at the global batch size would. A global batch with fewer rows than ranks (at most one an epoch, the
remainder) is left out. Evaluation batches are dealt round-robin; the ranks' results are gathered
back in batch order (training/evaluate.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import BatchSampler, RandomSampler, Sampler


def by_length(lengths: np.ndarray, batch_size: int) -> list[list[int]]:
    """Evaluation batches: rows sorted by length, then cut (little padding)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


class GroupedBatches(Sampler):
    """Training batches of similar lengths, in random order: shuffle, cut into buckets of `bucket`
    batches, sort each bucket by length, batch it, shuffle the batches. Every row once per epoch."""

    def __init__(
        self, lengths: np.ndarray, batch_size: int, generator: torch.Generator, bucket: int = 50
    ):
        self.lengths, self.batch_size, self.generator = lengths, batch_size, generator
        self.bucket = bucket

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).numpy()
        size = self.batch_size * self.bucket
        batches = []
        for i in range(0, len(order), size):
            chunk = order[i : i + size]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[j : j + self.batch_size].tolist()
                for j in range(0, len(chunk), self.batch_size)
            ]
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


def random_batches(rows: int, batch_size: int, generator: torch.Generator) -> BatchSampler:
    """Random training batches, exactly as DataLoader(shuffle=True, generator=...) makes them."""
    return BatchSampler(RandomSampler(range(rows), generator=generator), batch_size, False)


def batch_sizes(rows: int, batch_size: int) -> list[int]:
    """The sizes of an epoch's batches, in some order: both samplers above cut full batches and
    one remainder."""
    return [batch_size] * (rows // batch_size) + ([rows % batch_size] if rows % batch_size else [])


class RankShare(Sampler):
    """Rank `rank`'s part of every global batch of `batches`; `global_rows` holds the rows of
    each global batch of the epoch under way (the training loop weighs each step by them)."""

    def __init__(
        self,
        batches: Iterable[list[int]],
        sizes: list[int],
        generator: torch.Generator,
        rank: int,
        world: int,
    ):
        self.batches, self.sizes, self.generator = batches, sizes, generator
        self.rank, self.world = rank, world
        self.global_rows: list[int] = []

    def __len__(self) -> int:
        return sum(size >= self.world for size in self.sizes)

    def __iter__(self) -> Iterator[list[int]]:
        plan = [b for b in self.batches if len(b) >= self.world]
        self.global_rows = [len(b) for b in plan]
        for batch in plan:
            yield np.array_split(np.asarray(batch), self.world)[self.rank].tolist()


class EvalShare:
    """Rank `rank`'s evaluation batches (every `world`-th); `batches` are all of them, `mine` the
    positions of this rank's."""

    def __init__(self, batches: list[list[int]], rank: int, world: int):
        self.batches, self.mine = batches, list(range(rank, len(batches), world))

    def __iter__(self) -> Iterator[list[int]]:
        return (self.batches[i] for i in self.mine)

    def __len__(self) -> int:
        return len(self.mine)
