"""Readable, distinct run names: what a runs table and a compare view need to tell runs apart.

A single run is named after its model, data and main settings (`MiniLM-L6 imdb len128 lr1e-4`); a
sweep's child after its trial and the values the sweep varies (`trial 7 · lr=2e-4 freeze=top2`), a
seed repeat with its seed. No randomness: MLflow's own generator draws from Python's `random`, which
every run seeds, so every run got the same name. `tracking.run_name` always wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import mlflow

from textclf.config import Config

SHORT = {
    "train.learning_rate": "lr",
    "data.max_length": "len",
    "data.train_fraction": "frac",
    "train.batch_size": "bs",
    "train.grad_accum_steps": "accum",
    "data.seed": "data_seed",
}


def short_model(name: str) -> str:
    """all-MiniLM-L6-v2 -> MiniLM-L6; a path -> its last part."""
    return re.sub(r"-v\d+$", "", Path(name).name.removeprefix("all-"))


def value_text(value) -> str:
    """2e-4 rather than 0.0002; lists as a,b."""
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, float):
        if value != 0 and not 1e-2 <= abs(value) < 1e4:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.4g}"
    return str(value)


def run_name(cfg: Config) -> str:
    """Model, data, max length, learning rate, and what else differs from a plain full fine-tune."""
    d, m, t = cfg.data, cfg.model, cfg.train
    parts = [
        short_model(m.name),
        Path(d.name).name,
        f"len{d.max_length}",
        f"lr{value_text(t.learning_rate)}",
    ]
    if d.train_fraction < 1:
        parts.append(f"frac{value_text(d.train_fraction)}")
    if m.freeze != ("full",):
        parts.append("freeze=" + value_text(m.freeze))
    parts += [f"head={m.head}"] * (m.head != "auto") + [f"peft={m.peft}"] * (m.peft != "none")
    parts += ["from-scratch"] * (m.init == "random")
    return " ".join(parts)


def trial_name(
    number: int, cfg: Config | dict, keys: Iterable[str], seed: int | None = None
) -> str:
    """`trial 7 · lr=2e-4 freeze=top2`, the values of the keys a sweep varies (from a config, or
    a mapping of section.key values when the trial's config was rejected); `… seed 43` for a
    repeat."""
    flat = cfg.flat() if isinstance(cfg, Config) else cfg
    varied = " ".join(
        f"{SHORT.get(k, k.split('.')[-1])}={value_text(flat[k])}" for k in keys if k in flat
    )
    return f"trial {number} · {varied}".rstrip(" ·") + (f" seed {seed}" if seed is not None else "")


def unique_name(base: str, experiment_id: str) -> str:
    """`base`, or `base #n` with the next free n in the experiment."""
    found = mlflow.search_runs(
        [experiment_id],
        f"attributes.run_name LIKE '{base.replace(chr(39), '_')}%'",
        output_format="list",
    )
    pattern = re.compile(re.escape(base) + r"(?: #(\d+))?")
    taken = [m for m in (pattern.fullmatch(r.info.run_name) for r in found) if m]
    return base if not taken else f"{base} #{max(int(m.group(1) or 1) for m in taken) + 1}"
