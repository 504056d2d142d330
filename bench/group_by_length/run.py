"""bench/group_by_length: the same run with random training batches and with length-grouped batches
(train.group_by_length), everything else equal; padding, step time and accuracy side by side.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.group_by_length.run \
        [--model all-MiniLM-L6-v2] [--train-fraction 0.008] [--max-length 512] [--epochs 1] [--batch-size 16]

IMDB reviews average ~300 tokens with a long tail, so at max length 512 a random batch of 16 nearly
always holds one long review and pads the rest to it; grouped batches pad little. Both runs share one
warm token cache; the order is off, on. Prints one JSON object.
"""
from bench.common import emit, imdb, machine, parser, workdir
from textclf.config import load_config
from textclf.run import train_run

KEYS = ("padding_fraction", "train_step_time_s", "train_samples_per_s", "train_tokens_per_s",
        "train_padded_tokens_per_s", "mfu", "best_val_accuracy", "test_accuracy", "peak_gpu_mem_mb")


def main() -> None:
    args = parser(__doc__, train_fraction=0.008, max_length=512, epochs=1, batch_size=16).parse_args()
    work = workdir("grouping")
    base = imdb(args, "tracking.log_model=false", "tracking.experiment=grouping-bench")
    out = {"hardware": machine(), "settings": vars(args)}
    for grouped in (False, True):
        result = train_run(load_config(None, base + [f"train.group_by_length={str(grouped).lower()}"]),
                           f"sqlite:///{work / 'mlflow.db'}")
        out["grouped" if grouped else "random"] = {k: result.metrics.get(k) for k in KEYS}
    out["step_time_ratio_random_over_grouped"] = (out["random"]["train_step_time_s"]
                                                  / out["grouped"]["train_step_time_s"])
    emit(out)


if __name__ == "__main__":
    main()
