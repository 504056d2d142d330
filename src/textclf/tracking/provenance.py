"""What a run records about where it came from (git commit, device, data, fingerprints), and what it
must never record: values that look like secrets are redacted before they become params or tags."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

import textclf
from textclf.config import SECRET_VALUE

# run tag: what selected the epoch (train.monitor); splits comparability groups
MONITOR = "textclf.monitor"
# what the run trained in: fp32, bf16 or fp16 (train.precision=auto resolved on its device)
PRECISION = "textclf.precision"
# a sweep parent's tag: the study's objectives as JSON {metric: direction}, in order
OBJECTIVE = "study.objective"
_SECRET_KEY = re.compile(r"token|password|passwd|secret|api[_-]?key|credential", re.I)


def run_tags(
    split_fingerprint: str, eval_fingerprint: str, data_uri: str, device: torch.device
) -> dict[str, str]:
    commit, dirty = git_state()
    tags = {
        "textclf.split_fingerprint": split_fingerprint,
        "textclf.eval_fingerprint": eval_fingerprint,
        "textclf.git_commit": commit,
        "textclf.git_dirty": dirty,
        "textclf.device": describe_device(device),
        "textclf.version": textclf.__version__,
        "textclf.data_uri": data_uri,
    }
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    if device.type == "cuda":  # which physical GPU: CUDA_VISIBLE_DEVICES renumbers them from 0
        named = [
            g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()
        ]
        index = device.index or 0
        tags["textclf.gpu"] = (
            f"{named[index] if index < len(named) else index} {torch.cuda.get_device_name(device)}"
        )
    return tags


def redact(key: str, value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    if _SECRET_KEY.search(key) or SECRET_VALUE.match(text):
        return "<redacted>"
    return re.sub(r"://([^:/@]+):[^@/]+@", r"://\1:<redacted>@", text)  # passwords in URIs


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} {torch.cuda.get_device_name(device)}"
    return f"{device} ({torch.get_num_threads()} threads)"


def git_state() -> tuple[str, str]:
    where = Path(textclf.__file__).parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit, str(bool(dirty)).lower()
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"


def objective_tag(objectives: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The sweep parent's objective tag: {metric: direction} as JSON, in the study's order."""
    return {OBJECTIVE: json.dumps(dict(objectives))}


def objective_of(tags: dict[str, str]) -> tuple[str, str] | None:
    """The first (metric, direction) of a sweep parent's objective tag; None without one."""
    return next(iter(json.loads(tags.get(OBJECTIVE) or "{}").items()), None)
