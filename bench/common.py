"""What every benchmark shares: its argument defaults, a work directory with its own token cache and
MLflow store, the IMDB overrides, the machine description (from the function every run logs as
textclf.device), and printing one JSON object. Benchmarks run as modules from the repository root:

    TEXTCLF_ASSETS=../shared/assets .venv/bin/python -m bench.<name>.run [options]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from textclf.tracking.provenance import describe_device
from textclf.training.device import pick_device

ROOT = Path(__file__).resolve().parents[1]


def parser(doc: str, **defaults) -> argparse.ArgumentParser:
    """--model, -o overrides and whichever of --train-fraction, --max-length, --epochs,
    --batch-size a benchmark names, with its defaults (keyword names with '_' for '-')."""
    p = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--model", default=defaults.pop("model", "all-MiniLM-L6-v2"))
    kinds = {"train_fraction": float, "max_length": int, "epochs": int, "batch_size": int}
    for name, default in defaults.items():
        p.add_argument(
            "--" + name.replace("_", "-"), type=kinds.get(name, type(default)), default=default
        )
    p.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        help="extra textclf config override (e.g. tracking.log_figures=false on a minimal install)",
    )
    return p


def workdir(prefix: str) -> Path:
    """A fresh directory for the benchmark's stores; its token cache too, unless TEXTCLF_CACHE is
    set."""
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-bench-"))
    os.environ.setdefault("TEXTCLF_CACHE", str(work / "cache"))
    return work


def imdb(args, *extra: str) -> list[str]:
    """Overrides for MiniLM-style runs on IMDB with the `subset` split sizes the recorded figures
    used."""
    given = vars(args)
    keyed = {
        "train_fraction": "data.train_fraction",
        "max_length": "data.max_length",
        "epochs": "train.epochs",
        "batch_size": "train.batch_size",
    }
    return [
        f"model.name={args.model}",
        "data.name=imdb",
        "data.label_names=neg,pos",
        "data.split=subset",
        *[f"{key}={given[name]}" for name, key in keyed.items() if name in given],
        "train.progress=false",
        *extra,
        *given.get("override", []),
    ]


def machine() -> str:
    """The device every run would use, as runs log it, plus the CPU and the library versions."""
    return (
        f"{describe_device(pick_device('auto'))}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}"
    )


def emit(result: dict) -> None:
    print(json.dumps(result, indent=1))
