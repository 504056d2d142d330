"""bench/compile: `torch.compile` against eager for the classifier textclf trains, one training step
(forward, backward, clipping, AdamW) per padded batch width, and what that means for a
length-grouped epoch.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.compile.run \
        [--max-length 128] [--batch-size 16] [--multiple 64] [--steps 3] [--reviews 2000] \
        [--precision auto|fp32|bf16]

On the device textclf would pick (a GPU when there is one; `-o train.device=cpu` forces the CPU), at
textclf's precision there (`--precision auto`: bf16 autocast on a GPU with bf16, fp32 on CPU).

Widths are multiples of `--multiple` up to the max length (the padding that bounds recompiles);
every batch carries an attention mask (rows of random lengths within the width's last `--multiple`
tokens), as padded batches do. Per width: eager step time, compiled step time and compile time (the
first compiled step minus a compiled step), each the median of `--steps` timed steps after one
warm-up. The epoch estimate weights the widths by the batches a length-grouped epoch over
`--reviews` pooled IMDB training reviews would have. Prints one JSON object.
"""

from __future__ import annotations

import copy
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import emit, imdb, machine, parser
from textclf.config import load_config
from textclf.data import load_splits
from textclf.model.build import build_classifier, load_backbone
from textclf.training.device import autocast_dtype, pick_device
from textclf.training.optim import make_optimizer


def step_time(
    model, optimizer, batch: dict, labels: torch.Tensor, dtype: torch.dtype | None
) -> float:
    device = labels.device
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = F.cross_entropy(model(**batch).logits.float(), labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def a_batch(
    size: int, width: int, multiple: int, vocab: int, rng: np.random.Generator, device
) -> dict:
    lengths = rng.integers(max(1, width - multiple + 1), width + 1, size=size)
    lengths[0] = width
    mask = torch.from_numpy(np.arange(width) < lengths[:, None]).long()
    ids = torch.from_numpy(rng.integers(1000, vocab, size=(size, width))) * mask
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def time_widths(
    model, cfg, widths: list[int], args, compiled: bool, device, dtype
) -> dict[int, dict[str, float]]:
    model = copy.deepcopy(model).to(device)
    optimizer = make_optimizer(model, cfg.train, device)
    run = torch.compile(model, dynamic=False) if compiled else model
    rng, vocab = np.random.default_rng(0), model.config.vocab_size
    labels = torch.zeros(args.batch_size, dtype=torch.long, device=device)
    out = {}
    for width in widths:
        batch = a_batch(args.batch_size, width, args.multiple, vocab, rng, device)
        first = step_time(run, optimizer, batch, labels, dtype)
        steps = statistics.median(
            step_time(run, optimizer, batch, labels, dtype) for _ in range(args.steps)
        )
        out[width] = {"first_step_s": first, "step_s": steps}
    return out


def grouped_widths(cfg, tokenizer, args) -> dict[int, int]:
    """Batches per padded width in one length-grouped epoch over the first `--reviews` training
    reviews."""
    texts = list(load_splits(cfg.data).train.text[: args.reviews])
    lengths = sorted(
        len(ids)
        for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
    )
    counts: dict[int, int] = {}
    for i in range(0, len(lengths), args.batch_size):
        width = -(-max(lengths[i : i + args.batch_size]) // args.multiple) * args.multiple
        counts[width] = counts.get(width, 0) + 1
    return dict(sorted(counts.items()))


def main() -> None:
    p = parser(__doc__, max_length=128, batch_size=16)
    p.add_argument(
        "--multiple", type=int, default=64, help="batch widths padded to a multiple of this"
    )
    p.add_argument("--steps", type=int, default=3, help="timed steps per width and mode (median)")
    p.add_argument(
        "--reviews", type=int, default=2000, help="training reviews behind the epoch estimate"
    )
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    args = p.parse_args()
    args.train_fraction = 0.25  # enough pooled training reviews for --reviews
    cfg = load_config(None, imdb(args, f"train.precision={args.precision}"))
    device = pick_device(cfg.train.device)
    dtype = autocast_dtype(args.precision, device)
    # dynamo keeps 8 graphs per function by default; one per width must fit, or it falls back to
    # eager
    torch._dynamo.config.recompile_limit = max(64, torch._dynamo.config.recompile_limit)
    backbone = load_backbone(cfg.model, cfg.data)
    model = build_classifier(backbone, ("neg", "pos"), cfg.model).train()
    widths = list(range(args.multiple, args.max_length + 1, args.multiple))
    eager = time_widths(model, cfg, widths, args, compiled=False, device=device, dtype=dtype)
    compiled = time_widths(model, cfg, widths, args, compiled=True, device=device, dtype=dtype)
    per_width = {
        w: {
            "eager_step_s": round(eager[w]["step_s"], 4),
            "compiled_step_s": round(compiled[w]["step_s"], 4),
            "compile_s": round(compiled[w]["first_step_s"] - compiled[w]["step_s"], 2),
            "speedup": round(eager[w]["step_s"] / compiled[w]["step_s"], 3),
        }
        for w in widths
    }
    counts = grouped_widths(cfg, backbone.tokenizer, args)
    epoch_eager = sum(n * eager[w]["step_s"] for w, n in counts.items())
    epoch_compiled = sum(n * compiled[w]["step_s"] for w, n in counts.items())
    compile_total = sum(per_width[w]["compile_s"] for w in counts)
    saved = epoch_eager - epoch_compiled
    emit(
        {
            "bench": "compile",
            "args": vars(args),
            "device": machine(),
            "precision": str(dtype or torch.float32),
            "per_width": per_width,
            "grouped_epoch": {
                "reviews": args.reviews,
                "batches_per_width": counts,
                "eager_s": round(epoch_eager, 1),
                "compiled_s": round(epoch_compiled, 1),
                "speedup": round(epoch_eager / epoch_compiled, 3),
                "compile_s": round(compile_total, 1),
                "break_even_epochs": round(compile_total / saved, 2) if saved > 0 else None,
            },
        }
    )


if __name__ == "__main__":
    main()
