"""Load a tokenizer and a sequence-classification model from a local path, the mirror, or the hub.

Only safetensors weights are loaded and no remote code runs. A checkpoint whose head has another label
count is re-headed (e.g. a 3-class sentiment model fine-tuned on 2-class IMDB).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from textclf.assets import Resolved, resolve
from textclf.config import Config
from textclf.errors import InputError

log = logging.getLogger(__name__)
# position tables of these families start after the padding index, so 2 of their rows are not usable
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "bart"}


@dataclass(frozen=True)
class Backbone:
    location: str  # local path or hub id
    config: transformers.PretrainedConfig
    tokenizer: transformers.PreTrainedTokenizerBase

    def max_length(self) -> int:
        """The longest input (special tokens included) the model's position table allows."""
        positions = getattr(self.config, "max_position_embeddings", None) or 10**6
        if self.config.model_type in _OFFSET_POSITIONS:
            positions -= (self.config.pad_token_id or 0) + 1
        declared = self.tokenizer.model_max_length
        return min(positions, declared) if declared and declared < 10**6 else positions


def load_backbone(cfg: Config) -> Backbone:
    """Resolve model.name and check data.max_length against it; InputError before any training."""
    where = cfg.where("model.name")
    resolved = resolve(cfg.model.name, "models")
    if isinstance(resolved, str):
        raise InputError([f"{where}: model.name: {resolved}"])
    try:
        config = AutoConfig.from_pretrained(resolved.location, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as e:
        raise InputError([f"{where}: model.name: cannot load {_describe(resolved)} as a transformers "
                          f"checkpoint ({_first_line(e)})"]) from None
    backbone = Backbone(resolved.location, config, tokenizer)
    if cfg.data.max_length > backbone.max_length():
        raise InputError([f"{cfg.where('data.max_length')}: data.max_length: {cfg.data.max_length} is above "
                          f"the limit of {cfg.model.name} ({backbone.max_length()} tokens); lower it"])
    return backbone


def build_classifier(backbone: Backbone, label_names: tuple[str, ...]) -> torch.nn.Module:
    """The checkpoint with a classification head for `label_names` (new or re-sized head if needed)."""
    transformers.utils.logging.disable_progress_bar()
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            backbone.location, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)}, ignore_mismatched_sizes=True,
            use_safetensors=True, trust_remote_code=False, output_loading_info=True, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise InputError([f"model.name: cannot load {backbone.location} for sequence classification "
                          f"({_first_line(e)}); only safetensors checkpoints load"]) from None
    fresh = sorted(set(info.get("missing_keys", ())) | {k for k, *_ in info.get("mismatched_keys", ())})
    if fresh:
        log.info("newly initialised (train these): %s", ", ".join(fresh))
    return model


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def _describe(resolved: Resolved) -> str:
    return resolved.location if resolved.kind == "local" else f"hub model {resolved.location!r}"


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
