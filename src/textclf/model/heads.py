"""Classification heads over a transformer body's token states: cls, mean, cnn, mlp.

`model.head: auto` keeps the checkpoint's own AutoModelForSequenceClassification head and never
reaches this module. The others wrap the bare body (AutoModel) in a TextClassifier, saved as the
body in transformers format plus `head.safetensors` and `textclf_head.json`: reloading one needs
no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
import transformers
from torch import nn
from transformers import AutoModel
from transformers.modeling_outputs import SequenceClassifierOutput

HEAD_FILE, SPEC_FILE = "head.safetensors", "textclf_head.json"


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


class PooledHead(nn.Module):
    """cls / mean: dropout -> linear over the [CLS] state or the masked mean of all token states;
    mlp: Linear -> LayerNorm -> ReLU -> Dropout -> Linear over the same pooled state."""

    def __init__(
        self, hidden: int, num_labels: int, pooling: str, dropout: float, mlp_hidden: int = 0
    ):
        super().__init__()
        self.pooling = pooling
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if mlp_hidden:
            layers = [
                nn.Linear(hidden, mlp_hidden),
                nn.LayerNorm(mlp_hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            hidden = mlp_hidden
        self.net = nn.Sequential(*layers, nn.Linear(hidden, num_labels))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = states[:, 0] if self.pooling == "cls" else masked_mean(states, mask)
        return self.net(pooled)


class CNNHead(nn.Module):
    """1-D convolutions of several widths over the token states, masked max-pool, then linear."""

    def __init__(
        self, hidden: int, num_labels: int, channels: int, kernels: tuple[int, ...], dropout: float
    ):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(hidden, channels, k, padding=k // 2) for k in kernels)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(channels * len(kernels), num_labels)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # padding states are zeroed, as the convolution's own zero padding: a text scores the same
        # in any batch
        x = (states * mask.unsqueeze(-1).to(states.dtype)).transpose(1, 2)
        pooled = []
        for conv in self.convs:
            y = torch.relu(conv(x))[..., : mask.shape[1]]  # even kernels pad one step too many
            pooled.append(
                y.masked_fill(~mask.bool().unsqueeze(1), torch.finfo(y.dtype).min).amax(-1)
            )
        return self.out(self.dropout(torch.cat(pooled, -1)))


@dataclass(frozen=True)
class Head:
    """One kind of model.head: how it is built and what it works with."""

    # (spec: the model.* head settings, label count and names; hidden size) -> a head over token
    # states; None: the checkpoint's own AutoModelForSequenceClassification head
    build: Callable[[dict, int], nn.Module] | None
    # padded batches may reach it as sdpa's 4D mask (it does not pool with the 2D one)
    mask_4d: bool = False


def _mlp(s: dict, hidden: int) -> nn.Module:
    return PooledHead(hidden, s["num_labels"], s["pooling"], s["dropout"], s["mlp_hidden"])


def _cnn(s: dict, hidden: int) -> nn.Module:
    return CNNHead(
        hidden, s["num_labels"], s["cnn_channels"], tuple(s["cnn_kernels"]), s["dropout"]
    )


# every model.head, one entry each (config/schema.py HeadName lists the names and PEFT_HEADS those
# model.peft works with: tests check they agree)
HEADS: dict[str, Head] = {
    "auto": Head(None, mask_4d=True),
    "cls": Head(lambda s, hidden: PooledHead(hidden, s["num_labels"], "cls", s["dropout"])),
    "mean": Head(lambda s, hidden: PooledHead(hidden, s["num_labels"], "mean", s["dropout"])),
    "mlp": Head(_mlp),
    "cnn": Head(_cnn),
}
# a head's spec key -> the model.* setting it comes from (the spec is saved beside the weights as
# textclf_head.json, so its keys stay what saved models have)
SETTINGS = {
    "pooling": "pooling",
    "dropout": "head_dropout",
    "mlp_hidden": "mlp_hidden",
    "cnn_channels": "cnn_channels",
    "cnn_kernels": "cnn_kernels",
}


def head_spec(model_config, label_names: tuple[str, ...]) -> dict:
    """What a head of textclf's is built from, and saved with: model.head, its settings
    (SETTINGS), the labels."""
    settings = {key: getattr(model_config, field) for key, field in SETTINGS.items()}
    return {
        "head": model_config.head,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "num_labels": len(label_names),
        "label_names": list(label_names),
    }


def make_head(spec: dict, hidden: int) -> nn.Module:
    build = HEADS[spec["head"]].build
    if build is None:
        raise ValueError(f"model.head={spec['head']} is the checkpoint's own head, not textclf's")
    return build(spec, hidden)


class TextClassifier(nn.Module):
    """A transformer body and one of textclf's heads; forward() is a transformers classifier's."""

    body: transformers.PreTrainedModel
    head: nn.Module
    config: transformers.PretrainedConfig

    def __init__(self, body: transformers.PreTrainedModel, spec: dict):
        super().__init__()
        if getattr(body, "pooler", None) is not None:
            # the heads read token states; an unused pooler would only look trainable
            body.register_module("pooler", None)
        self.body, self.spec = body, spec
        self.head = make_head(spec, body.config.hidden_size)
        self.config = body.config  # carries id2label / label2id for predict
        self.config.id2label = dict(enumerate(spec["label_names"]))
        self.config.label2id = {n: i for i, n in enumerate(spec["label_names"])}

    @property
    def base_model(self) -> transformers.PreTrainedModel:
        return self.body

    def forward(self, input_ids, attention_mask=None, **kwargs) -> SequenceClassifierOutput:
        states = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # an unpadded batch: every position is a token (made on device, no sync)
        if attention_mask is None:
            attention_mask = torch.ones(states.shape[:2], dtype=torch.long, device=states.device)
        return SequenceClassifierOutput(logits=self.head(states, attention_mask))

    def save(self, directory: Path) -> None:
        self.body.save_pretrained(directory / "body", safe_serialization=True)
        safetensors.torch.save_file(
            {k: v.contiguous() for k, v in self.head.state_dict().items()}, directory / HEAD_FILE
        )
        (directory / SPEC_FILE).write_text(json.dumps(self.spec, indent=1))


def load_text_classifier(directory: Path) -> TextClassifier:
    spec = json.loads((directory / SPEC_FILE).read_text())
    body = AutoModel.from_pretrained(
        directory / "body",
        use_safetensors=True,
        trust_remote_code=False,
        # model.hub_kernels: saved models reload without
        use_kernels=False,
    )
    model = TextClassifier(body, spec)
    model.head.load_state_dict(safetensors.torch.load_file(directory / HEAD_FILE))
    return model.eval()
