"""bench/group_by_length: the same run with random training batches and with length-grouped batches
(train.group_by_length), everything else equal; padding, step time and accuracy side by side.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python bench/group_by_length/run.py \
        [--model all-MiniLM-L6-v2] [--train-fraction 0.008] [--max-length 512] [--epochs 1] [--batch-size 16]

IMDB reviews average ~300 tokens with a long tail, so at max length 512 a random batch of 16 nearly
always holds one long review and pads the rest to it; grouped batches pad little. Both runs share one
warm token cache; the order is off, on. Prints one JSON object.
"""
import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from textclf.config import load_config
from textclf.run import train_run

KEYS = ("padding_fraction", "train_step_time_s", "train_samples_per_s", "train_tokens_per_s",
        "train_padded_tokens_per_s", "mfu", "best_val_accuracy", "test_accuracy", "peak_gpu_mem_mb")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--train-fraction", type=float, default=0.008)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grouping-bench-"))
    os.environ.setdefault("TEXTCLF_CACHE", str(work / "cache"))
    base = [f"model.name={args.model}", "data.name=imdb", "data.split=subset",
            f"data.train_fraction={args.train_fraction}", f"data.max_length={args.max_length}",
            f"train.epochs={args.epochs}", f"train.batch_size={args.batch_size}", "train.progress=false",
            "tracking.log_model=false", "tracking.experiment=grouping-bench"]
    out = {"hardware": (torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores")
           + f", {platform.processor() or platform.machine()}, torch {torch.__version__}", "settings": vars(args)}
    for grouped in (False, True):
        result = train_run(load_config(None, base + [f"train.group_by_length={str(grouped).lower()}"]),
                           f"sqlite:///{work / 'mlflow.db'}")
        out["grouped" if grouped else "random"] = {k: result.metrics.get(k) for k in KEYS}
    out["step_time_ratio_random_over_grouped"] = (out["random"]["train_step_time_s"]
                                                  / out["grouped"]["train_step_time_s"])
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
