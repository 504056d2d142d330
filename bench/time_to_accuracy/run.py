"""bench/time_to_accuracy: full IMDB (25k train / 25k test), time from cached tokens to a final test
accuracy, per model.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.time_to_accuracy.run \
        --model all-MiniLM-L6-v2 [--model assets-extra/models/all-mpnet-base-v2] \
        [--max-length 256] ...

The tokens are put in the cache first (untimed: `bench/tokenize` measures that); the timed part is
one `textclf train` run (train_run): model load, fit, test evaluation on all 25,000 test reviews and
MLflow logging, with the model artifact off. Goals (issue 6, on one H100): MiniLM-L6 >= 0.90 test
accuracy in <= 60 s; MPNet-base >= 0.93 in <= 3 min. `--train-rows/--test-rows` cut the data for a
CPU smoke run. The base model comes from ../shared/tools/get-mpnet-base.sh. Prints one JSON object.
"""

import argparse
import time
from pathlib import Path

import torch

from bench.common import emit, machine, workdir
from textclf.config import load_config
from textclf.data import load_splits
from textclf.data.features import make_loaders
from textclf.model.build import load_backbone
from textclf.run import cache_length, train_run

# per model: what a run needs to reach its goal (learning rate, epochs, batch size); overridable
# with -o
RECIPES = {
    "all-MiniLM-L6-v2": ["train.learning_rate=1e-4", "train.epochs=2", "train.batch_size=32"],
    "all-mpnet-base-v2": ["train.learning_rate=3e-5", "train.epochs=2", "train.batch_size=32"],
}
GOALS = {"all-MiniLM-L6-v2": (0.90, 60.0), "all-mpnet-base-v2": (0.93, 180.0)}


def overrides_for(model: str, args) -> list[str]:
    name = Path(model).name
    rows = [f"data.test_size={args.test_rows}"] if args.test_rows else []
    fraction = [f"data.train_fraction={args.train_rows / 24000:.6f}"] if args.train_rows else []
    return [
        f"model.name={model}",
        "data.name=imdb",
        "data.split=provided",
        "data.val_size=1000",
        f"data.max_length={args.max_length}",
        "train.eval_batch_size=256",
        "train.patience=0",
        f"train.group_by_length={str(args.group_by_length).lower()}",
        "train.progress=false",
        "tracking.log_model=false",
        "tracking.experiment=time-to-accuracy",
        *rows,
        *fraction,
        *RECIPES.get(name, []),
        *args.override,
    ]


def warm_cache(cfg) -> float:
    start = time.perf_counter()
    splits, backbone = load_splits(cfg.data), load_backbone(cfg.model, cfg.data)
    make_loaders(
        splits,
        backbone.tokenizer,
        max_length=cfg.data.max_length,
        batch_size=8,
        eval_batch_size=8,
        seed=0,
        device=torch.device("cpu"),
        cache_length=cache_length(backbone, cfg),
    )
    return time.perf_counter() - start


def measure(model: str, args, store: str) -> dict:
    cfg = load_config(None, overrides_for(model, args))
    cold = warm_cache(cfg)
    start = time.perf_counter()
    result = train_run(cfg, store)
    wall = time.perf_counter() - start
    m, (floor, budget) = result.metrics, GOALS.get(Path(model).name, (None, None))
    return {
        "model": model,
        "wall_s": round(wall, 2),
        "test_accuracy": m["test_accuracy"],
        "goal": {
            "accuracy": floor,
            "seconds": budget,
            "met": None if floor is None else m["test_accuracy"] >= floor and wall <= budget,
        },
        "token_cache_hit": bool(m["token_cache_hit"]),
        "untimed_tokenize_s": round(cold, 2),
        **{
            k: m.get(k)
            for k in (
                "time_to_first_step_s",
                "train_time_s",
                "train_step_time_s",
                "train_samples_per_s",
                "train_tokens_per_s",
                "padding_fraction",
                "mfu",
                "model_tflops_per_s",
                "peak_gpu_mem_mb",
                "compile_time_s",
                "best_val_accuracy",
                "epochs_run",
            )
        },
        "overrides": overrides_for(model, args),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", help="model name or path (repeatable)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--train-rows", type=int, help="CPU smoke runs: about this many training rows"
    )
    parser.add_argument("--test-rows", type=int, help="CPU smoke runs: this many test rows")
    parser.add_argument(
        "-o", "--override", action="append", default=[], help="extra config override"
    )
    args = parser.parse_args()
    work = workdir("tta")
    results = [
        measure(m, args, f"sqlite:///{work / 'mlflow.db'}")
        for m in args.model or ["all-MiniLM-L6-v2"]
    ]
    emit({"hardware": machine(), "results": results})


if __name__ == "__main__":
    main()
