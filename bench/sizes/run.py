"""bench/sizes: training throughput at the sizes users fine-tune, without pretrained weights.
BERT-base (110M) and BERT-large (335M) shaped encoders are built with `model.init: random` from the
MiniLM checkpoint's config (only its tokenizer is read: BERT's uncased vocabulary), trained on IMDB
through textclf's defaults, through each lever, and through transformers.Trainer's defaults at the
same batch size and precision.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.sizes.run [--sizes base,large] \
        [--lengths 256,512] [--batch-size 32] [--steps 40] \
        [--levers default,compile,random_batches,batch_x2,no_4d_masks,unfused_adamw] \
        [--compile-sizes base] [--lever-sizes all] [--precision auto|bf16|fp32] [--no-trainer]

Per cell (size x length x lever): samples/s and real tokens/s of the training steps (first steps,
compile included; `steady_*` without the compile time), mfu against the dense peak of the card it
finds (training/flops.py: 989 TFLOP/s bf16 on an H100 SXM), peak GPU memory, padding fraction and,
on CUDA, the host-device synchronisations per optimizer step torch reports
(torch.cuda.set_sync_debug_mode). Trainer runs with its defaults (random batches, dynamic padding,
AdamW fused on CUDA) and no evaluation; textclf's figures are its training steps only (its per-epoch
validation is outside them). Prints one JSON object, also when SIGTERM (timeout) or Ctrl-C stops it:
the cells measured until then, and `stopped` says so.

Levers (each a set of textclf overrides, measured in the same process):
    default          textclf's defaults: length-grouped batches, ready-made 4D masks (sdpa), fused
                     AdamW
    compile          train.compile=true: the whole model compiled, batch widths bucketed
                     (compiled.py)
    random_batches   train.group_by_length=false: random batches padded to their longest row
                     (Trainer's way)
    batch_x2         twice the batch size (the token budget per step doubled)
    no_4d_masks      padded batches reach the model with the 2D mask (transformers' path: its
                     padding_mask.all() check syncs once per forward), as before the ready-made
                     masks
    unfused_adamw    torch's default (foreach) AdamW instead of the fused kernel
The last two are not config keys (textclf has no switch for them): the benchmark replaces that one
piece of textclf in its own process (`patched`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time

import numpy as np
import torch
import transformers

from bench.common import emit, machine, parser
from bench.device.smoke import counted_run
from textclf import interrupts
from textclf.config import load_config
from textclf.data import load_splits
from textclf.model.build import load_backbone
from textclf.training import flops
from textclf.training.device import autocast_dtype, pick_device

SHAPES = {  # BERT's published shapes; mini and tiny for CPU figures and the dry run
    "large": (24, 1024, 16, 4096),
    "base": (12, 768, 12, 3072),
    "mini": (4, 256, 4, 1024),
    "tiny": (2, 64, 2, 128),
}
# batch_x2: the batch size is doubled below
LEVERS = {
    "default": [],
    "compile": ["train.compile=true"],
    "random_batches": ["train.group_by_length=false"],
    "batch_x2": [],
    "no_4d_masks": [],
    "unfused_adamw": [],
}
IMDB_TRAIN = 24_800  # IMDB train rows left for training after dedup and 64 validation rows


def shape(size: str) -> str:
    layers, hidden, heads, ffn = SHAPES[size]
    return (
        f"model.config=[num_hidden_layers={layers},hidden_size={hidden},num_attention_heads={heads},"
        f"intermediate_size={ffn}]"
    )


def overrides(args, size: str, length: int, batch: int, extra: list[str]) -> list[str]:
    rows = args.steps * batch
    return [
        f"model.name={args.model}",
        "model.init=random",
        shape(size),
        "data.name=imdb",
        "data.label_names=neg,pos",
        f"data.train_fraction={rows / IMDB_TRAIN:.6f}",
        f"data.max_length={length}",
        "data.val_size=64",
        "data.test_size=64",
        "train.epochs=1",
        f"train.batch_size={batch}",
        "train.patience=0",
        f"train.precision={args.precision}",
        "train.progress=false",
        "tracking.log_model=false",
        "tracking.log_figures=false",
        *extra,
        *args.override,
    ]


@contextlib.contextmanager
def patched(lever: str):
    """The levers without a config key: one piece of textclf replaced for the duration of a run."""
    from textclf.model import build
    from textclf.training import loop, optim

    saved = build.takes_4d_mask, loop.make_optimizer
    if lever == "no_4d_masks":
        build.takes_4d_mask = lambda model, cfg: False
    if lever == "unfused_adamw":
        # a device that is neither cuda nor cpu: fused=False, and torch picks its foreach kernels
        loop.make_optimizer = lambda model, cfg, device: optim.make_optimizer(
            model, cfg, torch.device("meta")
        )
    try:
        yield
    finally:
        build.takes_4d_mask, loop.make_optimizer = saved


def run_textclf(config: list[str], store: str, count_syncs: bool) -> dict:
    m, syncs = counted_run(config, store, count_syncs)
    batch_size = load_config(None, config).train.batch_size
    steady_s = m["train_step_time_s"] - m.get("compile_time_s", 0.0)
    samples = m["train_samples_per_s"] * m["train_step_time_s"]
    steps = -(-round(samples) // batch_size)  # one epoch: optimizer steps
    return {
        k: m.get(k)
        for k in (
            "train_samples_per_s",
            "train_tokens_per_s",
            "mfu",
            "model_tflops_per_s",
            "peak_tflops",
            "peak_gpu_mem_mb",
            "padding_fraction",
            "train_step_time_s",
            "compile_time_s",
            "total_params",
        )
    } | {
        "steady_samples_per_s": samples / steady_s if steady_s > 0 else None,
        "steady_mfu": m["mfu"] * m["train_step_time_s"] / steady_s
        if m.get("mfu") and steady_s > 0
        else None,
        "syncs_per_step": len(syncs) / steps if count_syncs and steps else None,
    }


def run_trainer(config: list[str], bf16: bool) -> dict:
    """Trainer's defaults on the same rows, shape, batch size and precision; no evaluation."""
    import datasets

    cfg = load_config(None, config)
    splits, backbone = load_splits(cfg.data), load_backbone(cfg.model, cfg.data)
    tokenizer = backbone.tokenizer
    data = datasets.Dataset.from_dict(
        {"text": list(splits.train.text), "label": list(splits.train.label)}
    )
    data = data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=cfg.data.max_length),
        batched=True,
        remove_columns=["text"],
    )
    lengths = np.array([len(ids) for ids in data["input_ids"]])
    transformers.set_seed(cfg.train.seed)
    model_config = transformers.AutoConfig.from_pretrained(backbone.location, num_labels=2)
    for item in cfg.model.config:  # the same shape as textclf's side
        key, value = item.split("=")
        setattr(model_config, key, int(value))
    model = transformers.AutoModelForSequenceClassification.from_config(model_config)
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out,
            num_train_epochs=1,
            per_device_train_batch_size=cfg.train.batch_size,
            learning_rate=cfg.train.learning_rate,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            seed=cfg.train.seed,
            bf16=bf16,
            logging_strategy="no",
            disable_tqdm=True,
        )
        trainer = transformers.Trainer(
            model=model,
            args=args,
            train_dataset=data,
            data_collator=transformers.DataCollatorWithPadding(tokenizer),
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        with contextlib.redirect_stdout(
            sys.stderr
        ):  # Trainer prints its log dicts: stdout is the JSON
            stats = trainer.train().metrics
    device = pick_device("auto")
    tokens_per_s = lengths.sum() / stats["train_runtime"]
    per_token = flops.flops_per_token(
        model, model.config, flops.attention_length(int(lengths.sum()), int((lengths**2).sum()))
    )
    peak = flops.peak_flops(device, torch.bfloat16 if bf16 else None)
    return {
        "train_samples_per_s": stats["train_samples_per_second"],
        "train_tokens_per_s": tokens_per_s,
        "mfu": per_token * tokens_per_s / peak if peak else None,
        "peak_gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else None,
        "train_runtime_s": stats["train_runtime"],
    }


def cells(args) -> list[tuple[str, int, str]]:
    """Every size x length x lever, less compile where --compile-sizes leaves it out and any
    lever but default where --lever-sizes does."""

    def runs(size: str, lever: str) -> bool:
        if lever == "compile":
            return size in args.compile_sizes.split(",")
        return (
            lever == "default" or args.lever_sizes == "all" or size in args.lever_sizes.split(",")
        )

    return [
        (size, length, lever)
        for size in args.sizes.split(",")
        for length in map(int, args.lengths.split(","))
        for lever in args.levers.split(",")
        if runs(size, lever)
    ]


def main() -> None:
    p = parser(__doc__, batch_size=32)
    p.add_argument("--sizes", default="base,large")
    p.add_argument("--lengths", default="256,512")
    p.add_argument("--steps", type=int, default=40, help="optimizer steps per cell")
    p.add_argument(
        "--levers", default="default,compile,random_batches,batch_x2,no_4d_masks,unfused_adamw"
    )
    p.add_argument(
        "--compile-sizes",
        default="base",
        help="sizes the compile lever runs at (compiles are slow)",
    )
    p.add_argument(
        "--lever-sizes", default="all", help="sizes the other levers run at (default runs at all)"
    )
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--no-trainer", action="store_true")
    a = p.parse_args()
    unknown = {lever for lever in a.levers.split(",")} - set(LEVERS) | set(
        a.sizes.split(",")
    ) - set(SHAPES)
    if unknown:
        p.error(
            f"unknown levers or sizes: {sorted(unknown)}; levers {list(LEVERS)}, "
            f"sizes {list(SHAPES)}"
        )
    device = pick_device("auto")
    dtype = autocast_dtype(a.precision, device)
    results: list[dict] = []
    # timeout's SIGTERM ends the loop as an interrupt: the cells measured are kept
    interrupts.install()
    stopped = ""
    try:
        measure(a, device, dtype, results)
    except KeyboardInterrupt as e:
        stopped = f"{type(e).__name__}: stopped after {len(results)} cells"
    emit(
        {
            "bench": "sizes",
            "args": vars(a),
            "precision": str(dtype or torch.float32),
            "cells": results,
            "speedups": speedups(results),
            "stopped": stopped,
            "device": machine(),
            "transformers": transformers.__version__,
        }
    )


def measure(a, device, dtype, results: list[dict]) -> None:
    """Every cell into `results`, in order (a stop leaves the ones measured)."""
    with tempfile.TemporaryDirectory() as tmp:
        # a throwaway run: process start-up costs (CUDA context, cuBLAS, autotuning) land on no cell
        warm = argparse.Namespace(**{**vars(a), "steps": 2})
        run_textclf(
            overrides(warm, a.sizes.split(",")[0], 64, a.batch_size, []),
            f"sqlite:///{tmp}/w.db",
            False,
        )
        for size, length, lever in cells(a):
            batch = a.batch_size * (2 if lever == "batch_x2" else 1)
            config = overrides(a, size, length, batch, LEVERS[lever])
            start = time.perf_counter()
            try:
                with patched(lever):
                    row = run_textclf(config, f"sqlite:///{tmp}/mlflow.db", device.type == "cuda")
            except torch.OutOfMemoryError:
                row = {"error": f"out of memory at batch {batch}"}
            results.append(
                {
                    "size": size,
                    "length": length,
                    "lever": lever,
                    "batch_size": batch,
                    "side": "textclf",
                    "wall_s": time.perf_counter() - start,
                    **row,
                }
            )
            print(f"{size} {length} {lever}: {row}", file=sys.stderr)
        if not a.no_trainer:
            for size in a.sizes.split(","):
                for length in map(int, a.lengths.split(",")):
                    row = run_trainer(
                        overrides(a, size, length, a.batch_size, []), dtype == torch.bfloat16
                    )
                    results.append(
                        {
                            "size": size,
                            "length": length,
                            "lever": "trainer_defaults",
                            "batch_size": a.batch_size,
                            "side": "hf_trainer",
                            **row,
                        }
                    )


def speedups(results: list[dict]) -> dict[str, float]:
    """textclf's default cell over Trainer's defaults, per size and length (samples/s)."""
    ours = {
        (r["size"], r["length"]): r for r in results if r["lever"] == "default" and "error" not in r
    }
    found = {}
    for r in results:
        if r["side"] == "hf_trainer" and (r["size"], r["length"]) in ours:
            found[f"{r['size']}@{r['length']}"] = (
                ours[r["size"], r["length"]]["train_samples_per_s"] / r["train_samples_per_s"]
            )
    return found


if __name__ == "__main__":
    main()
