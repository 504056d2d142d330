"""Worker processes of one sweep on this machine, one GPU each (or K: --devices-per-trial).

`--workers K` on a machine with G visible GPUs gives worker i the GPU i mod G: its process starts
with CUDA_VISIBLE_DEVICES set to that one GPU, so CUDA never sees the others. `--workers auto` is
one worker per GPU (one worker without a GPU); `--gpus 0,2` restricts the set. With K > G, workers
share GPUs round-robin: each shared GPU's memory is split between its workers and each runs slower.
Worker i also gets its index, from which its sampler's seed derives (study.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

from textclf.errors import InputError


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (or 0..G-1)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    named = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return named[:count] if named else [str(i) for i in range(count)]


def plan(
    workers: str, gpus: str | None, available: list[str], cores: int = 1, per_trial: int = 1
) -> list[dict[str, str]]:
    """One environment per worker process: its CUDA_VISIBLE_DEVICES, `per_trial` GPUs of its own
    (a trial on several processes: --devices-per-trial); without GPUs, its share of the machine's
    `cores` as its thread budget (torch's and the tokenizer's; its ranks share it), unless the user
    set $OMP_NUM_THREADS: K workers of all the cores each would oversubscribe them K times."""
    chosen = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else available
    unknown = [g for g in chosen if g not in available]
    if unknown:
        raise InputError(
            [
                f"--gpus {gpus}: GPU {', '.join(unknown)} is not visible here (visible: "
                f"{', '.join(available) or 'none'}); name visible GPUs"
            ]
        )
    groups = [",".join(chosen[i : i + per_trial]) for i in range(0, len(chosen), per_trial)]
    groups = [g for g in groups if g.count(",") + 1 == per_trial]  # whole groups of K only
    if chosen and not groups:
        raise InputError(
            [
                f"--devices-per-trial {per_trial}: needs {per_trial} GPUs per trial, and "
                f"{len(chosen)} are given ({', '.join(chosen)}); lower it or name more --gpus"
            ]
        )
    if workers == "auto":
        count = max(len(groups), 1)
    elif workers.isdigit() and int(workers) >= 1:
        count = int(workers)
    else:
        raise InputError(
            [f"--workers {workers}: give a number of worker processes (>= 1) or auto (one per GPU)"]
        )
    if groups:
        return [{"CUDA_VISIBLE_DEVICES": groups[i % len(groups)]} for i in range(count)]
    if os.environ.get("OMP_NUM_THREADS"):
        return [{} for _ in range(count)]
    share = str(max(1, cores // count))
    return [{"OMP_NUM_THREADS": share, "RAYON_NUM_THREADS": share} for _ in range(count)]


def spawn(
    argv: list[str], environments: list[dict[str, str]], env: dict[str, str], first_index: int = 0
) -> int:
    """One `textclf ARGV` process per environment (worker indices first_index...); returns the first
    non-zero exit code, else 0. Credentials and URLs travel in the environment, not in argv."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "textclf", *argv, "--worker-index", str(first_index + i)],
            env={**os.environ, **env, **own},
        )
        for i, own in enumerate(environments)
    ]
    try:
        codes = [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise
    return next((c for c in codes if c), 0)
