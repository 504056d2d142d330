"""bench/group_by_length: the same run with random training batches and with length-grouped batches
(train.group_by_length), everything else equal, for one or more training seeds; padding, step time
and accuracy side by side, with each side's mean and spread over the seeds.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.group_by_length.run \
        [--model all-MiniLM-L6-v2] [--train-fraction 0.008] [--max-length 512] [--epochs 1] \
        [--batch-size 16] [--seeds 42,43,44] [-o data.split=pool -o data.train_fraction=4000 ...]

IMDB reviews average ~300 tokens with a long tail, so at max length 512 a random batch of 16 nearly
always holds one long review and pads the rest to it; grouped batches pad little. Every run shares
one warm token cache and the same split (data.seed is not the training seed, so validation and test
rows are the same for every seed); per seed the order is random, grouped. Prints one JSON object.
"""

import statistics
import sys

from bench.common import emit, imdb, machine, parser, workdir
from textclf.config import load_config
from textclf.run import train_run

KEYS = (
    "padding_fraction",
    "train_step_time_s",
    "train_samples_per_s",
    "train_tokens_per_s",
    "train_padded_tokens_per_s",
    "mfu",
    "best_val_accuracy",
    "test_accuracy",
    "test_f1",
    "peak_gpu_mem_mb",
)
SUMMARIZED = (
    "best_val_accuracy",
    "test_accuracy",
    "test_f1",
    "train_step_time_s",
    "padding_fraction",
)


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one seed), min and max."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def main() -> None:
    p = parser(__doc__, train_fraction=0.008, max_length=512, epochs=1, batch_size=16)
    p.add_argument("--seeds", default="42", help="training seeds, comma-separated (train.seed)")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    work = workdir("grouping")
    base = imdb(args, "tracking.log_model=false", "tracking.experiment=grouping-bench")
    out = {"hardware": machine(), "settings": vars(args), "runs": {"random": [], "grouped": []}}
    for seed in seeds:
        for grouped in (False, True):
            cfg = load_config(
                None, [*base, f"train.group_by_length={str(grouped).lower()}", f"train.seed={seed}"]
            )
            result = train_run(cfg, f"sqlite:///{work / 'mlflow.db'}")
            row = {"seed": seed, **{k: result.metrics.get(k) for k in KEYS}}
            out["runs"]["grouped" if grouped else "random"].append(row)
            print(
                f"seed {seed} {'grouped' if grouped else 'random'}: {row}",
                file=sys.stderr,
                flush=True,
            )
    out["summary"] = {
        side: {k: spread([r[k] for r in rows]) for k in SUMMARIZED if rows[0].get(k) is not None}
        for side, rows in out["runs"].items()
    }
    out["step_time_ratio_random_over_grouped"] = (
        out["summary"]["random"]["train_step_time_s"]["mean"]
        / out["summary"]["grouped"]["train_step_time_s"]["mean"]
    )
    emit(out)


if __name__ == "__main__":
    main()
