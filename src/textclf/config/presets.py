"""model.freeze's words: the named presets (resolved against each model family's own module
structure in model/freeze.py) and what counts as a parameter-name pattern."""

from __future__ import annotations

import re

FIXED_PRESETS = (
    "full",
    "head_only",
    "embeddings+layer0",
    "attention_only",
    "ffn_only",
    "layernorm_only",
    "bias_only",
)
BLOCK_PRESET = re.compile(r"(top|bottom)(\d+)")


def is_preset(item: str) -> bool:
    return item in FIXED_PRESETS or BLOCK_PRESET.fullmatch(item) is not None


def is_pattern(item: str) -> bool:
    return any(c in item for c in "*?[.")


def describe_presets() -> str:
    return ", ".join(FIXED_PRESETS) + ", top{k}, bottom{k}"
