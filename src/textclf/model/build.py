"""Load a tokenizer and a sequence-classification model from a local path, the mirror, or the hub.

Only safetensors weights are loaded and no remote code runs. A checkpoint whose head has another
label count is re-headed (e.g. a 3-class sentiment model fine-tuned on 2-class IMDB). `model.init:
random` keeps the checkpoint's architecture (with `model.config` overrides) and tokenizer but none
of its weights; position embeddings are then the family's own learned table (BERT-style models have
no sinusoidal option; DistilBERT's config has `sinusoidal_pos_embds`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from textclf.assets import Resolved, resolve
from textclf.config import DataConfig, ModelConfig
from textclf.errors import InputError, first_line
from textclf.model import freeze, peft_tuning
from textclf.model.architecture import architecture, changed
from textclf.model.files import damaged
from textclf.model.heads import HEADS, TextClassifier, head_spec

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


def load_backbone(model: ModelConfig, data: DataConfig) -> Backbone:
    """Resolve model.name and check data.max_length against it; InputError before any training.
    (The two sections it reads: the model, and the data's max length the model must allow.)"""
    where = model.where("model.name")
    resolved = resolve(model.name, "models")
    if isinstance(resolved, str):
        raise InputError([f"{where}: model.name: {resolved}"])
    problem = damaged(Path(resolved.location)) if resolved.kind == "local" else None
    if problem:
        raise InputError([f"{where}: model.name: {problem}"])
    try:
        config = AutoConfig.from_pretrained(resolved.location, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(resolved.location, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(
            [
                f"{where}: model.name: cannot load {_describe(resolved)} as a "
                f"transformers checkpoint ({first_line(e, 300)})"
            ]
        ) from None
    if model.config:
        config = architecture(config, model.config, model.where("model.config"))
    backbone = Backbone(resolved.location, config, tokenizer)
    room = backbone.max_length() - (model.prefix_length if model.peft == "prompt" else 0)
    if model.peft == "prompt" and data.max_length > room:
        raise InputError(
            [
                f"{data.where('data.max_length')}: data.max_length: {data.max_length} plus "
                f"{model.prefix_length} prompt tokens exceeds the limit of {model.name} "
                f"({backbone.max_length()}); lower data.max_length or model.prefix_length"
            ]
        )
    if data.max_length > backbone.max_length():
        raise InputError(
            [
                f"{data.where('data.max_length')}: data.max_length: {data.max_length} "
                f"is above the limit of {model.name} ({backbone.max_length()} "
                "tokens); lower it"
            ]
        )
    return backbone


def build_classifier(
    backbone: Backbone, label_names: tuple[str, ...], m: ModelConfig
) -> torch.nn.Module:
    """The classifier model.* asks for, with only the chosen parameters trainable."""
    transformers.utils.logging.disable_progress_bar()
    model: transformers.PreTrainedModel | TextClassifier
    if HEADS[m.head].build is None:  # the checkpoint's own head
        model = _load(
            AutoModelForSequenceClassification,
            backbone,
            m,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={n: i for i, n in enumerate(label_names)},
            ignore_mismatched_sizes=True,
        )
    else:
        spec = head_spec(m, label_names)
        model = TextClassifier(_load(AutoModel, backbone, m), spec)
    # read by the training loop (training/evaluate.py to_device); a peft wrapper passes it on from
    # the model inside. A plain attribute: Module.__setattr__ only routes tensors and modules.
    object.__setattr__(model, "takes_4d_mask", takes_4d_mask(model, m))
    if m.peft != "none":
        if not isinstance(model, transformers.PreTrainedModel):  # config/checks.py PEFT_HEADS
            raise InputError([f"{m.where('model.peft')}: model.peft: needs model.head=auto"])
        return peft_tuning.wrap(model, m, m.where("model.peft"))
    try:
        parts = freeze.describe_parts(model, model.base_model, m.freeze)
    except ValueError as e:
        raise InputError([f"{m.where('model.freeze')}: model.freeze: {e}"]) from None
    trainable, problems = freeze.select(parts, m.freeze)
    if problems:
        raise InputError([f"{m.where('model.freeze')}: model.freeze: {p}" for p in problems])
    freeze.apply(model, trainable)
    return model


def takes_4d_mask(model: torch.nn.Module, m: ModelConfig) -> bool:
    """Whether padded batches may reach `model` as the 4D boolean mask transformers builds from the
    2D one for sdpa attention. transformers 5 returns a 4D mask as it is, so its
    `padding_mask.all()` check, a host-device sync per forward on CUDA, never runs; the logits are
    identical (tests/model/test_masks.py). Not for other attention kernels (eager adds the mask to
    the scores: another form), textclf's own heads (they pool with the 2D mask) or prompt and prefix
    tuning (they extend the 2D mask)."""
    return (
        HEADS[m.head].mask_4d
        and m.peft in ("none", "lora")
        and getattr(model.config, "_attn_implementation", None) == "sdpa"
    )


def _load(auto_class, backbone: Backbone, m: ModelConfig, **kwargs) -> transformers.PreTrainedModel:
    # the architecture only: every weight fresh, drawn from the run's seeded generator
    if m.init == "random":
        kwargs.pop("ignore_mismatched_sizes", None)
        config = changed(backbone.config, kwargs)
        log.info("model.init=random: %s trains from scratch", backbone.location)
        return auto_class.from_config(config, dtype=torch.float32)
    try:
        model, info = auto_class.from_pretrained(
            backbone.location,
            use_safetensors=True,
            trust_remote_code=False,
            output_loading_info=True,
            dtype=torch.float32,
            use_kernels=m.hub_kernels,
            **kwargs,
        )
    except (OSError, ValueError) as e:
        raise InputError(
            [
                f"model.name: cannot load {backbone.location} as {auto_class.__name__} "
                f"({first_line(e, 300)}); only safetensors checkpoints load"
            ]
        ) from None
    fresh = sorted(
        set(info.get("missing_keys", ())) | {k for k, *_ in info.get("mismatched_keys", ())}
    )
    if fresh:
        log.info("newly initialised (train these): %s", ", ".join(fresh))
    return model


def trainable_names(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def describe_trainable(model: torch.nn.Module, show_all: bool = False) -> str:
    """`T name shape` per tensor (T trains, - frozen), then the counts: the artifact a run logs."""
    lines = [
        f"{'T' if p.requires_grad else '-'} {n} {tuple(p.shape)}"
        for n, p in model.named_parameters()
        if show_all or p.requires_grad
    ]
    trainable, total = count_params(model)
    tensors = sum(1 for p in model.parameters() if p.requires_grad)
    return "\n".join(
        [
            *lines,
            f"{trainable:,} of {total:,} parameters train ({trainable / total:.2%}), "
            f"{tensors} tensors",
        ]
    )


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def _describe(resolved: Resolved) -> str:
    return resolved.location if resolved.kind == "local" else f"hub model {resolved.location!r}"
