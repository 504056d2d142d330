"""bench/vs_hf_trainer: the same model, rows, max length, batch size, epochs and learning rate
through textclf and through transformers.Trainer, measured in one process, reported side by side.

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.vs_hf_trainer.run \
        [--model all-MiniLM-L6-v2] [--train-fraction 0.025] [--max-length 128] [--epochs 1] \
        [--batch-size 16] [--precision auto|fp32|bf16] [--trainer default,grouped,best]

Both evaluate on the validation rows after every epoch and on the test rows at the end. textclf runs
with its defaults at `--precision` (auto: what textclf picks on this device, bf16 on a GPU or CPU
that multiplies bf16 natively, else fp32). Trainer variants (`--trainer`): default, Trainer's own
defaults (random batches through DataCollatorWithPadding, fp32 unless --precision bf16); grouped,
its `group_by_length` at textclf's precision (the like-for-like run); best, its fastest settings
here: grouping, and bf16 where the device has it natively. A variant whose settings equal an
earlier one's is not run twice (on a CPU without bf16, best is grouped). Throughput is training
samples per second of the training loop (textclf: step time; Trainer: its train_runtime, which
includes its per-epoch evaluation, so textclf's whole fit time is reported too). Prints one JSON
object.
"""

import contextlib
import resource
import sys
import tempfile
import time

import numpy as np
import torch
import transformers

from bench.common import emit, imdb, machine, parser
from textclf.config import load_config
from textclf.data import load_splits
from textclf.model.build import load_backbone
from textclf.run import train_run
from textclf.training.device import autocast_dtype, native_cpu_bf16, pick_device


def run_textclf(overrides: list[str], store: str) -> dict:
    cfg = load_config(None, [*overrides, "tracking.log_model=false", "train.progress=false"])
    start = time.perf_counter()
    result = train_run(cfg, store)
    m = result.metrics
    return {
        "wall_s": time.perf_counter() - start,
        "fit_s": m["train_time_s"],
        "train_samples_per_s": m["train_samples_per_s"],
        "train_tokens_per_s": m["train_tokens_per_s"],
        "test_accuracy": m["test_accuracy"],
        "peak_gpu_mem_mb": m.get("peak_gpu_mem_mb"),
    }


def run_trainer(overrides: list[str], bf16: bool, grouped: bool) -> dict:
    import datasets

    cfg = load_config(None, overrides)
    splits, backbone = load_splits(cfg.data), load_backbone(cfg.model, cfg.data)
    tokenizer = backbone.tokenizer

    def as_dataset(frame):
        data = datasets.Dataset.from_dict({"text": list(frame.text), "label": list(frame.label)})
        return data.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=cfg.data.max_length),
            batched=True,
            remove_columns=["text"],
        )

    start = time.perf_counter()
    train, val, test = as_dataset(splits.train), as_dataset(splits.val), as_dataset(splits.test)
    transformers.set_seed(cfg.train.seed)
    # as textclf's side: transformers >= 5.25 would turn them on
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        backbone.location,
        num_labels=len(splits.label_names),
        use_safetensors=True,
        use_kernels=cfg.model.hub_kernels,
    )
    with tempfile.TemporaryDirectory() as out:
        # v5 name of group_by_length
        args = transformers.TrainingArguments(
            output_dir=out,
            num_train_epochs=cfg.train.epochs,
            per_device_train_batch_size=cfg.train.batch_size,
            per_device_eval_batch_size=cfg.train.eval_batch_size,
            learning_rate=cfg.train.learning_rate,
            weight_decay=cfg.train.weight_decay,
            warmup_steps=cfg.train.warmup_ratio,  # v5: a float < 1 is a ratio
            max_grad_norm=cfg.train.max_grad_norm,
            eval_strategy="epoch",
            save_strategy="no",
            report_to=[],
            seed=cfg.train.seed,
            bf16=bf16,
            logging_strategy="no",
            disable_tqdm=True,
            train_sampling_strategy="group_by_length" if grouped else "random",
        )
        trainer = transformers.Trainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=val,
            data_collator=transformers.DataCollatorWithPadding(tokenizer),
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        with contextlib.redirect_stdout(
            sys.stderr
        ):  # Trainer prints its log dicts: stdout is the JSON
            stats = trainer.train().metrics
            predictions = trainer.predict(test)
    # label_ids, not test["label"]: with group_by_length, transformers 5 also length-groups (and
    # shuffles) the rows it predicts, so predictions come back out of the dataset's order
    accuracy = float((np.argmax(predictions.predictions, -1) == predictions.label_ids).mean())
    return {
        "wall_s": time.perf_counter() - start,
        "fit_s": stats["train_runtime"],
        "train_samples_per_s": stats["train_samples_per_second"],
        "test_accuracy": accuracy,
        "peak_gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else None,
    }


def repeated(settings: dict[str, tuple[bool, bool]], variant: str) -> bool:
    """Whether an earlier Trainer variant has the settings of `variant` (it is not run again)."""
    names = list(settings)
    return settings[variant] in [settings[v] for v in names[: names.index(variant)]]


def run_textclf_once(overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return run_textclf(overrides, f"sqlite:///{tmp}/mlflow.db")


def warm_up(overrides: list[str], device: torch.device, dtype: torch.dtype | None) -> None:
    """One forward/backward on the benchmark's device and precision: library and kernel start-up
    costs (CUDA context, cuBLAS handles, autotuning) land on neither side."""
    cfg = load_config(None, overrides)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        load_backbone(cfg.model, cfg.data).location,
        num_labels=2,
        use_safetensors=True,
        use_kernels=cfg.model.hub_kernels,
    ).to(device)
    ids = torch.randint(1000, 2000, (cfg.train.batch_size, cfg.data.max_length), device=device)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = model(
            input_ids=ids, labels=torch.zeros(len(ids), dtype=torch.long, device=device)
        ).loss
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer_settings(
    variants: list[str], precision: str, device: torch.device, dtype: torch.dtype | None
) -> dict[str, tuple[bool, bool]]:
    """(bf16, group_by_length) per Trainer variant. default: Trainer's defaults (fp32 unless
    --precision bf16, random batches); grouped: its length grouping at textclf's precision (the
    like-for-like run); best: grouping, and bf16 where the device multiplies bf16 natively (a
    GPU with bf16, a CPU with AMX or AVX512-BF16), its fastest settings."""
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else native_cpu_bf16()
    table = {
        "default": (precision == "bf16", False),
        "grouped": (dtype == torch.bfloat16, True),
        "best": (native or precision == "bf16", True),
    }
    unknown = [v for v in variants if v not in table]
    if unknown:
        raise SystemExit(f"--trainer: unknown variant {unknown}; choose from {', '.join(table)}")
    return {v: table[v] for v in variants}


def main() -> None:
    p = parser(
        __doc__, train_fraction=0.025, max_length=128, epochs=1, batch_size=16, learning_rate=1e-4
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="both sides: auto = bf16 on a GPU with bf16, else fp32",
    )
    p.add_argument(
        "--trainer",
        default="default,grouped,best",
        help="Trainer variants: default, grouped, best (a variant with the settings of an earlier "
        "one is not run again)",
    )
    p.add_argument(
        "--textclf-last",
        action="store_true",
        help="run textclf after the Trainer variants (on a CPU, kernels built for the shapes one "
        "side met are reused by the sides after it: this shows how much the order weighs)",
    )
    a = p.parse_args()
    overrides = imdb(
        a,
        f"train.learning_rate={a.learning_rate}",
        "train.patience=0",
        f"train.precision={a.precision}",
    )
    device = pick_device("auto")
    dtype = autocast_dtype(a.precision, device)
    warm_up(overrides, device, dtype)
    settings = trainer_settings(a.trainer.split(","), a.precision, device, dtype)
    trained = {} if a.textclf_last else {"textclf": run_textclf_once(overrides)}
    trained |= {
        variant: run_trainer(overrides, bf16=bf16, grouped=grouped)
        for variant, (bf16, grouped) in settings.items()
        if not repeated(settings, variant)
    }
    ours = trained["textclf"] if "textclf" in trained else run_textclf_once(overrides)
    result = {
        "bench": "vs_hf_trainer",
        "args": vars(a),
        "precision": str(dtype or torch.float32),
        "order": "Trainer first" if a.textclf_last else "textclf first",
        "textclf": ours,
    }
    for variant, (bf16, grouped) in settings.items():
        if repeated(settings, variant):
            result[f"hf_trainer_{variant}"] = {"same_as_an_earlier_variant": [bf16, grouped]}
            continue
        theirs = trained[variant]
        # both fit times include the per-epoch validation pass: the like-for-like ratio
        result[f"hf_trainer_{variant}"] = theirs | {
            "bf16": bf16,
            "group_by_length": grouped,
            "speedup_fit": theirs["fit_s"] / ours["fit_s"],
            "speedup_wall": theirs["wall_s"] / ours["wall_s"],
        }
    emit(
        result
        | {
            "device": machine(),
            "transformers": transformers.__version__,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


if __name__ == "__main__":
    main()
