"""Which parameters train: named presets resolved from the model's own module structure.

`model.freeze` lists what trains (the name is historical: the notebooks talk about "freezing"). Each
item is a preset or an fnmatch pattern over parameter names; the union trains, plus the
classification head, which always trains. Everything else gets requires_grad=False, so the optimizer
never sees it and autograd skips the backward pass below the lowest trainable layer.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from textclf.config import BLOCK_PRESET, describe_presets, is_pattern, is_preset

FAMILIES = {
    "bert": "BERT",
    "electra": "ELECTRA",
    "roberta": "RoBERTa",
    "xlm-roberta": "RoBERTa",
    "camembert": "RoBERTa",
    "distilbert": "DistilBERT",
    "mpnet": "MPNet",
}
_BLOCK = re.compile(r"^(?:encoder|transformer)\.layer\.(\d+)\.")


@dataclass(frozen=True)
class Part:
    """One parameter tensor and its role in the architecture."""

    name: str  # full name in the model being trained
    kind: str  # embeddings | attention | ffn | pooler | shared | head
    block: int | None  # transformer block index, None outside the blocks
    norm: bool = False  # a LayerNorm weight or bias

    @property
    def is_bias(self) -> bool:
        return self.name.endswith("bias")


def describe_parts(
    model: torch.nn.Module, base: torch.nn.Module, items: Sequence[str]
) -> list[Part]:
    """Every parameter of `model` with its role; `base` is the transformer body (the rest is the
    head). Roles need a known family, unless `items` are only `full` and name patterns."""
    model_type = getattr(getattr(base, "config", None), "model_type", None)
    if model_type not in FAMILIES and any(is_preset(i) and i != "full" for i in items):
        raise ValueError(
            f"freeze presets support {', '.join(sorted(set(FAMILIES.values())))} "
            f"models (model_type {', '.join(FAMILIES)}), not {model_type!r}; use "
            "model.freeze=full or explicit name patterns"
        )
    in_base = {id(p): n for n, p in base.named_parameters()}
    norms = {
        n
        for n, m in base.named_modules()
        if isinstance(m, torch.nn.LayerNorm) or type(m).__name__.endswith("LayerNorm")
    }
    parts = []
    for name, param in model.named_parameters():
        local = in_base.get(id(param))
        if local is None:
            parts.append(Part(name, "head", None))
            continue
        block = _BLOCK.match(local)
        module = local.rsplit(".", 1)[0]
        if local.startswith("embeddings"):
            kind = "embeddings"
        elif local.startswith("pooler."):
            kind = "pooler"
        elif block is None:
            kind = "shared"  # e.g. MPNet's relative attention bias, shared by all blocks
        else:
            inner = local[block.end() :].split(".")
            kind = "attention" if {"attention", "attn"} & set(inner) else "ffn"
        parts.append(Part(name, kind, int(block.group(1)) if block else None, module in norms))
    return parts


def select(parts: list[Part], items: Sequence[str]) -> tuple[set[str], list[str]]:
    """(names that train, problems): one problem per item that is unknown or matches nothing."""
    blocks = sorted({p.block for p in parts if p.block is not None})
    chosen, problems = {p.name for p in parts if p.kind == "head"}, []
    for item in items:
        names = {p.name for p in parts if _wanted(item, p, len(blocks))}
        match = BLOCK_PRESET.fullmatch(item)
        if match and not 1 <= int(match.group(2)) <= len(blocks):
            problems.append(
                f"{item}: the model has {len(blocks)} transformer blocks; use k in 1..{len(blocks)}"
            )
        elif not (is_preset(item) or is_pattern(item)):
            problems.append(
                f"{item}: not a preset ({describe_presets()}) or a name pattern such "
                "as '*.layer.11.*'"
            )
        elif not names and item != "head_only":
            problems.append(
                f"{item}: matches no parameter of this model; `textclf model inspect` lists them"
            )
        chosen |= names
    return chosen, problems


def _wanted(item: str, p: Part, n_blocks: int) -> bool:
    if p.kind == "head":
        return False  # always trains; a preset matching only the head selects nothing
    if item == "full":
        return True
    if item == "head_only":
        return False
    if item == "embeddings+layer0":  # the notebooks' "lowest level unfrozen"
        return p.block == 0 or p.kind == "embeddings"
    if item == "attention_only":
        return (p.kind == "attention" and not p.norm) or p.kind == "shared"
    if item == "ffn_only":
        return p.kind == "ffn" and not p.norm
    if item == "layernorm_only":
        return p.norm
    if item == "bias_only":
        return p.is_bias
    match = BLOCK_PRESET.fullmatch(item)
    if match:
        k = int(match.group(2))
        if match.group(1) == "top":  # as in the notebooks: the top blocks plus the pooler
            return (p.block is not None and p.block >= n_blocks - k) or p.kind == "pooler"
        return p.block is not None and p.block < k
    return fnmatch.fnmatchcase(p.name, item)


def apply(model: torch.nn.Module, trainable: set[str]) -> None:
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)
