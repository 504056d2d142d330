"""model.config: a checkpoint's architecture changed by name (`init: random` only), in the
checkpoint config's own names and types; every unknown name or mistyped value is one problem."""

from __future__ import annotations

import difflib

import transformers
import yaml

from textclf.errors import InputError


def architecture(
    config: transformers.PretrainedConfig, overrides: tuple[str, ...], where: str
) -> transformers.PretrainedConfig:
    """The checkpoint's config with `model.config` overrides (its own names, values of the same
    type); every unknown name or mistyped value is one problem."""
    known, changes, problems = config.to_dict(), {}, []
    for item in overrides:
        key, _, text = (part.strip() for part in item.partition("="))
        value = yaml.safe_load(text) if text else None
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1)
            problems.append(
                f"{where}: model.config: {key} is not in the {config.model_type} "
                f"config{f'; did you mean {near[0]}?' if near else ''}"
            )
        # unset in the checkpoint (BERT's classifier_dropout): any plain value
        elif known[key] is None:
            if isinstance(value, (list, dict)):
                problems.append(
                    f"{where}: model.config: {key} must be a number, text or "
                    f"true/false (the checkpoint leaves it unset), got {text!r}"
                )
            else:
                changes[key] = value
        elif type(value) is not type(known[key]) and not (
            isinstance(known[key], float) and type(value) is int
        ):
            problems.append(
                f"{where}: model.config: {key} must be {type(known[key]).__name__} "
                f"like the checkpoint's {known[key]!r}, got {text!r}"
            )
        else:
            changes[key] = value
    merged = changed(config, changes)
    hidden, heads = (getattr(merged, k, None) for k in ("hidden_size", "num_attention_heads"))
    if not problems and hidden and heads and hidden % heads:
        problems.append(
            f"{where}: model.config: hidden_size {hidden} is not divisible by "
            f"num_attention_heads {heads}; pick sizes with hidden_size a multiple of "
            "the head count"
        )
    if problems:
        raise InputError(problems)
    return merged


def changed(config: transformers.PretrainedConfig, changes: dict) -> transformers.PretrainedConfig:
    """A new config of the same class with `changes` (the original is shared with the Backbone)."""
    return type(config).from_dict({**config.to_dict(), **changes})
