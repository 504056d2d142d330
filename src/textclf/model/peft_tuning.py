"""Parameter-efficient tuning through the `peft` library: LoRA, soft-prompt and prefix tuning.

The backbone stays frozen; peft trains the adapter and, through `modules_to_save`, the
classification head. It is saved as the adapter (safetensors) plus either the base model or only
the base model's location (`save_base`).
"""

from __future__ import annotations

import torch
import transformers

from textclf.config import ModelConfig
from textclf.errors import InputError, first_line

# LoRA on the attention query and value projections, per family (peft knows BERT and RoBERTa itself)
_LORA_TARGETS = {
    "distilbert": ["q_lin", "v_lin"],
    "mpnet": ["q", "v"],
    "bert": ["query", "value"],
    "electra": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
}


def wrap(model: transformers.PreTrainedModel, m: ModelConfig, where: str) -> torch.nn.Module:
    """`model` (transformers' own classifier: model.head=auto) with a peft adapter that trains."""
    import peft

    config = model.config
    heads = [
        n for n, _ in model.named_children() if n != model.base_model_prefix and "dropout" not in n
    ]
    task, keep = peft.TaskType.SEQ_CLS, heads  # the classification head trains beside the adapter
    method: peft.PeftConfig
    if m.peft == "lora":
        method = peft.LoraConfig(
            r=m.lora_r,
            lora_alpha=m.lora_alpha,
            lora_dropout=m.lora_dropout,
            target_modules=_LORA_TARGETS.get(config.model_type),
            task_type=task,
            modules_to_save=keep,
        )
    else:
        # DistilBERT names them dim, n_layers, n_heads
        hidden = getattr(config, "hidden_size", None) or config.dim
        layers = getattr(config, "num_hidden_layers", None) or config.n_layers
        heads_n = getattr(config, "num_attention_heads", None) or config.n_heads
        kind = peft.PromptTuningConfig if m.peft == "prompt" else peft.PrefixTuningConfig
        method = kind(
            num_virtual_tokens=m.prefix_length,
            token_dim=hidden,
            num_layers=layers,
            num_attention_heads=heads_n,
            task_type=task,
            modules_to_save=keep,
        )
    try:
        wrapped = peft.get_peft_model(model, method)
        if m.peft == "prefix":  # support for past-key-value prefixes shows only in a forward pass
            with torch.no_grad():
                wrapped(
                    input_ids=torch.ones(1, 2, dtype=torch.long), attention_mask=torch.ones(1, 2)
                )
        return wrapped
    except (ValueError, TypeError, NotImplementedError, AttributeError) as e:
        hint = "; use model.peft=prompt (soft prompt tokens) or lora" if m.peft == "prefix" else ""
        raise InputError(
            [
                f"{where}: model.peft: {m.peft} does not work with {config.model_type} "
                f"models here ({first_line(e)}){hint}"
            ]
        ) from None


def is_peft(model: torch.nn.Module) -> bool:
    import peft

    return isinstance(model, peft.PeftModel)


def base_location(model: torch.nn.Module) -> str:
    """Where the base model of a peft model came from (saved with model.save_base=false)."""
    import peft

    if not isinstance(model, peft.PeftModel):
        raise TypeError(f"not a peft model: {type(model).__name__}")
    return str(model.peft_config["default"].base_model_name_or_path)
