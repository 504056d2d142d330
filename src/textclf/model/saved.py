"""The saved form of the models that are not a plain transformers classifier: textclf's own heads
and peft adapters.

A directory with `textclf_model.json`, `tokenizer/` and either the body + head files (heads.py) or a
peft adapter with the base model beside it (`base/`) or only its location. Safetensors and JSON
only: loading it runs no pickle. Plain transformers classifiers are logged with MLflow's
transformers flavor instead. A Predictor classifies texts with any loaded classifier and its
tokenizer.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from textclf.model.heads import TextClassifier, load_text_classifier

MANIFEST = "textclf_model.json"


def is_plain(model: torch.nn.Module) -> bool:
    """True for a transformers classifier, which MLflow's transformers flavor saves and loads."""
    from textclf.model.peft_tuning import is_peft

    return not isinstance(model, TextClassifier) and not is_peft(model)


def save_model_dir(
    model: torch.nn.Module,
    tokenizer,
    directory: Path,
    max_length: int,
    base: str,
    save_base: bool = True,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory / "tokenizer")
    manifest = {
        "max_length": max_length,
        "label_names": label_names(model),
    }
    if isinstance(model, TextClassifier):
        model.save(directory)
        manifest["format"] = "head"
    else:
        import peft

        if not isinstance(model, peft.PeftModel):
            raise TypeError(f"textclf's saved form holds its heads and peft models, not {model}")
        model.save_pretrained(str(directory / "adapter"), safe_serialization=True)
        save_base = save_base and Path(base).is_dir()  # a hub id stays a reference
        manifest |= {"format": "peft", "base": "base" if save_base else base}
        # the frozen base is the checkpoint as loaded: copy its files rather than re-serialize
        if save_base:
            (directory / "base").mkdir()
            for f in Path(base).iterdir():
                if f.is_file() and f.suffix in (".json", ".safetensors", ".txt", ".model"):
                    shutil.copyfile(f, directory / "base" / f.name)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))


def load_model_dir(
    directory: Path,
) -> tuple[torch.nn.Module, transformers.PreTrainedTokenizerBase, int]:
    """(model in eval mode, tokenizer, max_length)."""
    manifest = json.loads((directory / MANIFEST).read_text())
    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer", trust_remote_code=False)
    model: torch.nn.Module
    if manifest["format"] == "head":
        model = load_text_classifier(directory)
    else:
        import peft

        names = manifest["label_names"]
        base = directory / "base" if manifest["base"] == "base" else manifest["base"]
        body = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            ignore_mismatched_sizes=True,
            use_safetensors=True,
            # model.hub_kernels: saved models reload without
            trust_remote_code=False,
            use_kernels=False,
        )
        model = peft.PeftModel.from_pretrained(body, directory / "adapter")
    return model.eval(), tokenizer, int(manifest["max_length"])


@contextmanager
def hub_kernels_off():
    """For loaders that take no `use_kernels` (MLflow's transformers flavor): transformers >= 5.25
    reads USE_HUB_KERNELS when it is not passed, so a saved model reloads with its own torch code,
    as after training."""
    before = os.environ.get("USE_HUB_KERNELS")
    os.environ["USE_HUB_KERNELS"] = "NO"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("USE_HUB_KERNELS", None)
        else:
            os.environ["USE_HUB_KERNELS"] = before


def size_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 2**20


@dataclass
class Predictor:
    model: torch.nn.Module
    tokenizer: transformers.PreTrainedTokenizerBase
    max_length: int

    @property
    def label_names(self) -> list[str]:
        return label_names(self.model)

    @torch.inference_mode()
    def probabilities(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Class probabilities, one row per text, columns in label order."""
        self.model.eval()
        rows = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[i : i + batch_size],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
                return_token_type_ids=False,
            )
            rows.append(self.model(**batch).logits.float().softmax(-1))
        return torch.cat(rows) if rows else torch.empty(0, len(self.label_names))

    def predict(self, texts: list[str]) -> list[dict]:
        probs = self.probabilities(texts)
        names = self.label_names
        return [
            {
                "text": t,
                "label": names[int(p.argmax())],
                "score": float(p.max()),
                "probabilities": dict(zip(names, map(float, p), strict=False)),
            }
            for t, p in zip(texts, probs, strict=False)
        ]


def predictor_from_dir(directory: Path) -> Predictor:
    """A model saved in textclf's own form (save_model_dir): custom heads and peft adapters."""
    return Predictor(*load_model_dir(directory))


def label_names(model: torch.nn.Module) -> list[str]:
    """The class names a classifier carries (its config's id2label), in label order."""
    config = getattr(model, "config", None)
    if not isinstance(config, transformers.PretrainedConfig):
        raise TypeError(f"{type(model).__name__} has no transformers config with label names")
    # int keys in memory, str keys where a saved config.json was read
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return [id2label[i] for i in range(len(id2label))]
