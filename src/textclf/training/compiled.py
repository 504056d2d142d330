"""train.compile: the training forward and backward through `torch.compile`, and the seconds spent
compiling.

Only training is compiled: evaluation batches have other shapes (eval_batch_size, sorted widths),
and each new shape would compile again for one pass. Graphs are static (`dynamic=False`): the loader
pads training batches to a multiple of 64 and always passes a mask (features.Collate), so there is
one graph per width, plus one per width the epoch's shorter last batch lands on. Dynamo keeps 8
graphs per function by default and falls back to eager after that; at max length 512 there are up to
16, so the limit is raised while training.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import cast

import torch

# dynamo's recompile limit while a compiled model trains (2 shapes per width up to 8,192 tokens)
GRAPHS = 256


class CompileClock:
    """Compile time: the first step at each batch shape (compilation happens then) minus that
    shape's median later step. On CPU steps are timed anyway (synchronous); on a GPU only first
    steps are timed (a later one would need a sync per step), and there compilation (seconds) dwarfs
    the step itself (milliseconds)."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device, self.enabled = device, enabled
        self.first: dict[tuple, float] = {}
        self.later: dict[tuple, list[float]] = {}

    @contextlib.contextmanager
    def timing(self, shape: tuple) -> Iterator[None]:
        new = shape not in self.first
        if not self.enabled or (not new and self.device.type == "cuda"):
            yield
            return
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        took = time.perf_counter() - start
        if new:
            self.first[shape] = took
        else:
            self.later.setdefault(shape, []).append(took)

    def seconds(self) -> float:
        return sum(
            max(0.0, t - statistics.median(self.later[s])) if self.later.get(s) else t
            for s, t in self.first.items()
        )

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@contextlib.contextmanager
def compiled(
    model: torch.nn.Module, enabled: bool, device: torch.device
) -> Iterator[tuple[torch.nn.Module, CompileClock]]:
    """(what the training steps call, its clock): the model itself when not `enabled`. The
    compiled module shares the model's parameters, so the optimizer, checkpoints and evaluation
    keep using `model`."""
    clock = CompileClock(device, enabled)
    if not enabled:
        yield model, clock
        return
    import torch._dynamo

    config = torch._dynamo.config
    saved = config.recompile_limit
    config.recompile_limit = max(saved, GRAPHS)
    try:
        # a module in, an OptimizedModule out (the stubs say only "a callable")
        yield cast(torch.nn.Module, torch.compile(model, dynamic=False)), clock
    finally:
        config.recompile_limit = saved
