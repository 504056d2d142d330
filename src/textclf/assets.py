"""Resolve dataset and model names: a local path, the offline mirror in $TEXTCLF_ASSETS, or the hub.

The mirror is a directory with `data/<name>/` and `models/<name>/` (`../shared/assets` has this
layout), so `data.name: imdb` and `model.name: all-MiniLM-L6-v2` load with no network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ASSETS_ENV = "TEXTCLF_ASSETS"
# owner/name or a bare name: what a Hugging Face hub id can look like
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


@dataclass(frozen=True)
class Resolved:
    # "local" (a path on disk) or "hub" (a Hugging Face id, needs network or a warm cache)
    kind: str
    location: str  # the path or the hub id

    @property
    def uri(self) -> str:
        return (
            str(Path(self.location).resolve()) if self.kind == "local" else f"hf://{self.location}"
        )


def assets_dir() -> Path | None:
    value = os.environ.get(ASSETS_ENV, "").strip()
    return Path(value).expanduser() if value else None


def resolve(name: str, kind: str) -> Resolved | str:
    """Resolve a `data` or `models` name; returns a Resolved or a one-line problem."""
    path = Path(name).expanduser()
    if path.exists():
        return Resolved("local", str(path))
    mirror = assets_dir()
    if mirror is not None and (mirror / kind / name).exists():
        return Resolved("local", str(mirror / kind / name))
    if _looks_local(name) or not _HUB_ID.fullmatch(name):
        return (
            f"{name!r} does not exist; give an existing path or a name under ${ASSETS_ENV}/{kind}/"
        )
    return Resolved("hub", name)


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(
        (".csv", ".parquet", ".jsonl", ".json", ".label")
    )


def mirror_names(kind: str) -> list[str]:
    mirror = assets_dir()
    if mirror is None or not (mirror / kind).is_dir():
        return []
    return sorted(p.name for p in (mirror / kind).iterdir() if not p.name.startswith("."))
