"""The GPU machine's smoke checks before the benchmarks: one short full fine-tuning run (counting
the host-device synchronisations torch reports, `torch.cuda.set_sync_debug_mode`), one LoRA run,
each with its peak GPU memory, mfu and throughput. Prints one JSON object; exits 1 when a check
fails.

    TEXTCLF_ASSETS=... python -m bench.device.smoke [--rows 4000] [--max-length 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import torch

from bench.common import emit, machine
from textclf.config import load_config
from textclf.run import train_run

KEYS = (
    "test_accuracy",
    "best_val_accuracy",
    "train_samples_per_s",
    "train_tokens_per_s",
    "mfu",
    "model_tflops_per_s",
    "peak_gpu_mem_mb",
    "trainable_params",
    "padding_fraction",
    "train_time_s",
)


def counted_run(
    overrides: list[str], store: str, count_syncs: bool
) -> tuple[dict[str, float], list]:
    """A train_run's metrics and, on CUDA with count_syncs, the synchronisation warnings torch
    raised in it."""
    cfg = load_config(None, overrides)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if count_syncs:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            result = train_run(cfg, store)
        finally:
            if count_syncs:
                torch.cuda.set_sync_debug_mode("default")
    return result.metrics, [w for w in seen if "synchroniz" in str(w.message)]


def one_run(overrides: list[str], store: str, count_syncs: bool) -> dict:
    """A train_run; on CUDA with count_syncs, the synchronisations torch warns about, by source
    line."""
    start = time.perf_counter()
    metrics, syncs = counted_run(overrides, store, count_syncs)
    where: dict[str, int] = {}
    for w in syncs:
        key = f"{w.filename.split('site-packages/')[-1]}:{w.lineno}"
        where[key] = where.get(key, 0) + 1
    return {
        "wall_s": round(time.perf_counter() - start, 2),
        **{k: metrics.get(k) for k in KEYS},
        "syncs": len(syncs) if count_syncs else None,
        "sync_sources": dict(sorted(where.items(), key=lambda kv: -kv[1])[:15])
        if count_syncs
        else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=4000, help="IMDB training rows")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("-o", "--override", action="append", default=[])
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    base = [
        "data.name=imdb",
        "data.split=pool",
        "data.val_size=500",
        "data.test_size=1000",
        f"data.train_fraction={a.rows / 48500:.6f}",
        f"data.max_length={a.max_length}",
        "train.epochs=1",
        f"train.batch_size={a.batch_size}",
        "train.learning_rate=1e-4",
        "train.progress=false",
        "tracking.log_model=false",
        "tracking.log_figures=false",
        "tracking.experiment=device-smoke",
        *a.override,
    ]
    out: dict = {"device": machine(), "settings": vars(a)}
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in (
            ("full", []),
            ("lora", ["model.peft=lora", "train.learning_rate=5e-4"]),
        ):
            try:
                out[name] = one_run(
                    base + extra, f"sqlite:///{tmp}/mlflow.db", count_syncs=cuda and name == "full"
                )
                if cuda and not out[name]["peak_gpu_mem_mb"]:
                    failed.append(f"{name}: no peak_gpu_mem_mb on a GPU")
            except Exception as e:
                out[name] = {"error": f"{type(e).__name__}: {e}"}
                failed.append(name)
    if (
        "lora" in out
        and "full" in out
        and "trainable_params" in out["lora"]
        and "trainable_params" in out["full"]
    ):
        out["lora_trainable_fraction_of_full"] = (
            out["lora"]["trainable_params"] / out["full"]["trainable_params"]
        )
    out["failed"] = failed
    emit(out)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
