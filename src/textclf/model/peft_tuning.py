"""Parameter-efficient tuning through the `peft` library: LoRA, soft-prompt and prefix tuning.

The backbone stays frozen; peft trains the adapter and, through `modules_to_save`, the
classification head. It is saved as the adapter (safetensors) plus either the base model or only
the base model's location (`save_base`).
"""

from __future__ import annotations

import torch

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


def wrap(model: torch.nn.Module, m: ModelConfig, where: str) -> torch.nn.Module:
    import peft

    config = model.config
    heads = [
        n for n, _ in model.named_children() if n != model.base_model_prefix and "dropout" not in n
    ]
    common = {"task_type": peft.TaskType.SEQ_CLS, "modules_to_save": heads}
    if m.peft == "lora":
        method = peft.LoraConfig(
            r=m.lora_r,
            lora_alpha=m.lora_alpha,
            lora_dropout=m.lora_dropout,
            target_modules=_LORA_TARGETS.get(config.model_type),
            **common,
        )
    else:
        dims = {
            "token_dim": getattr(config, "hidden_size", None) or config.dim,
            "num_layers": getattr(config, "num_hidden_layers", None) or config.n_layers,
            "num_attention_heads": getattr(config, "num_attention_heads", None) or config.n_heads,
        }
        kind = peft.PromptTuningConfig if m.peft == "prompt" else peft.PrefixTuningConfig
        method = kind(num_virtual_tokens=m.prefix_length, **dims, **common)
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
    return model.peft_config["default"].base_model_name_or_path
