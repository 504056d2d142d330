"""bench/threads: how many threads a CPU run should use, for training and for tokenizing.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.threads.run \
        [--train-fraction 0.01] [--lengths 128,512] [--threads 1,2] [--workers 0,1] [--epochs 1]

Training: one textclf run per (max length, intra-op threads, DataLoader workers) on the same IMDB
rows (the `subset` split), the token cache warm; samples/s of the training steps as each run logs
it. Tokenizing: the same 10,000 IMDB reviews tokenized cold at 512 with the tokenizer's thread
pool at each thread count (RAYON_NUM_THREADS, read when the pool starts: one process each).
textclf sets torch's threads to the physical cores (training/device.py cpu_threads); this shows
what that choice is worth on the machine it runs on. Prints one JSON object.
"""

import os
import subprocess
import sys
import time

from bench.common import ROOT, emit, imdb, machine, parser, workdir
from textclf.config import load_config
from textclf.run import train_run
from textclf.training.device import physical_cores

TOKENIZE = """
import sys, time, tempfile, pandas as pd
from pathlib import Path
from transformers import AutoTokenizer
from textclf.assets import resolve
from textclf.data import tokens
texts = list(pd.read_parquet(Path(resolve("imdb", "data").location) / "train.parquet").text[:10000])
tokenizer = AutoTokenizer.from_pretrained(resolve(sys.argv[1], "models").location)
start = time.perf_counter()
tokens.tokenize(texts, tokenizer, 512, 512, Path(tempfile.mkdtemp()))
print(time.perf_counter() - start)
"""


def train_cell(args, store: str, length: int, threads: int, workers: int) -> dict:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # what use_cpu_threads reads at the run's start
    cfg = load_config(
        None,
        imdb(
            args,
            f"data.max_length={length}",
            f"train.num_workers={workers}",
            "train.patience=0",
            "tracking.log_model=false",
            "tracking.log_figures=false",
            "tracking.system_metrics=false",
        ),
    )
    metrics = train_run(cfg, store).metrics
    return {
        "max_length": length,
        "threads": threads,
        "num_workers": workers,
        "train_samples_per_s": round(metrics["train_samples_per_s"], 2),
        "train_time_s": round(metrics["train_time_s"], 1),
    }


def tokenize_cell(model: str, threads: int) -> dict:
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-c", TOKENIZE, model],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {"tokenizer_threads": threads, "cold_10k_s": round(float(done.stdout.split()[-1]), 2)}


def main() -> None:
    p = parser(__doc__, train_fraction=0.01, epochs=1)
    p.add_argument("--lengths", default="128,512")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--workers", default="0,1")
    args = p.parse_args()
    work = workdir("threads")
    store = f"sqlite:///{work / 'mlflow.db'}"
    threads = [int(t) for t in args.threads.split(",")]
    start = time.perf_counter()
    # warm-up: imports, the token cache for every length, the model files in the page cache
    for length in map(int, args.lengths.split(",")):
        train_cell(args, store, length, threads[-1], 0)
    training = [
        train_cell(args, store, length, t, w)
        for length in map(int, args.lengths.split(","))
        for t in threads
        for w in map(int, args.workers.split(","))
    ]
    emit(
        {
            "bench": "threads",
            "hardware": machine(),
            "physical_cores": physical_cores(),
            "training": training,
            "tokenizing": [tokenize_cell(args.model, t) for t in threads],
            "wall_s": round(time.perf_counter() - start, 1),
        }
    )


if __name__ == "__main__":
    main()
