"""bench/precision: the README's main job at fp32 and at bf16 autocast, compared on the same rows.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.precision.run \
        [--store DIR] [--figure docs/precision-curves.png] [--model M] [-o KEY=VALUE]

Trains configs/quickstart.yaml twice through the CLI (`-o train.precision=fp32`, then `bf16`; runs
named main-fp32 and main-bf16; a run of that name already FINISHED in the store is reused, so a
stopped benchmark resumes), then asks `textclf compare --json` whether the bf16 model differs from
the fp32 one on the validation and on the test rows, and draws both runs' per-epoch losses and
validation accuracy side by side. Prints one JSON object: each run's precision tag, timings and
scores, and the two verdicts. On a CPU without bf16 matrix instructions bf16 is emulated (slower
than fp32): the accuracy comparison holds there, its timing says nothing of a CPU that has them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import mlflow

from bench.common import ROOT, emit, machine, parser

PRECISIONS = ("fp32", "bf16")
CURVES = ("train_loss_running", "train_loss", "val_loss", "val_accuracy")
SCORES = ("total_time_s", "train_samples_per_s", "best_val_accuracy", "test_accuracy", "test_loss")


def trained(store: str, precision: str, extra: list[str]) -> str:
    """The id of the FINISHED run main-<precision> in the store, trained now if there is none."""
    name = f"main-{precision}"
    mlflow.set_tracking_uri(store)
    query = f"attributes.run_name = '{name}' and attributes.status = 'FINISHED'"
    found = mlflow.search_runs(
        experiment_names=["quickstart"], filter_string=query, output_format="list"
    )
    if found:
        return found[0].info.run_id
    command = [sys.executable, "-m", "textclf", "train", "--config", "configs/quickstart.yaml"]
    chosen = [*extra, f"train.precision={precision}", f"tracking.run_name={name}"]
    overrides = [a for o in chosen for a in ("-o", o)]
    subprocess.run([*command, "--tracking-uri", store, *overrides], cwd=ROOT, check=True)
    return trained(store, precision, extra)


def compared(store: str, a: str, b: str, split: str) -> dict:
    """`textclf compare A B --split SPLIT --json`: is the model B different from A on these rows?"""
    command = [sys.executable, "-m", "textclf", "compare", a, b, "--split", split, "--json"]
    done = subprocess.run(
        [*command, "--tracking-uri", store], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def draw(store: str, runs: dict[str, str], figure: Path) -> None:
    """Per-epoch losses (left) and validation accuracy (right), one line style per precision."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    client = mlflow.MlflowClient(store)
    fig, (losses, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    for precision, run_id in runs.items():
        style = "-" if precision == "fp32" else "--"
        for key in CURVES:
            history = client.get_metric_history(run_id, key)
            axes = accuracy if key == "val_accuracy" else losses
            steps, values = [m.step for m in history], [m.value for m in history]
            axes.plot(steps, values, style, marker="o", label=f"{key} ({precision})")
    accuracy.set_ylim(0.5, 1.0)  # chance to perfect: a 1-row difference is not drawn as a gap
    for axes, title in ((losses, "losses per epoch"), (accuracy, "validation accuracy")):
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_title(title)
        axes.legend(fontsize=7)
    fig.suptitle("configs/quickstart.yaml at fp32 (solid) and bf16 autocast (dashed)")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=100)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--store", default="bench-precision", help="directory of the MLflow store")
    p.add_argument("--figure", default="docs/precision-curves.png")
    args = p.parse_args()
    start = time.perf_counter()
    Path(args.store).mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{Path(args.store).resolve() / 'mlflow.db'}"
    extra = [f"model.name={args.model}", *args.override]
    runs = {precision: trained(store, precision, extra) for precision in PRECISIONS}
    client = mlflow.MlflowClient(store)
    described = {}
    for precision, run_id in runs.items():
        run = client.get_run(run_id)
        metrics = run.data.metrics
        described[precision] = {
            "run_id": run_id,
            "textclf.precision": run.data.tags.get("textclf.precision"),
            **{key: round(metrics[key], 4) for key in SCORES if key in metrics},
        }
    verdicts = {
        split: compared(store, runs["fp32"], runs["bf16"], split) for split in ("val", "test")
    }
    draw(store, runs, Path(args.figure))
    emit(
        {
            "bench": "precision",
            "hardware": machine(),
            "runs": described,
            "compare": {split: v.get("verdict", v) for split, v in verdicts.items()},
            "compare_full": verdicts,
            "figure": args.figure,
            "wall_s": round(time.perf_counter() - start, 1),
        }
    )


if __name__ == "__main__":
    main()
