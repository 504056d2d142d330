"""Load a logged textclf model (runs:/<id>/model, models:/..., or a local path) and classify texts."""
from __future__ import annotations

import os
from dataclasses import dataclass

from pathlib import Path

import torch

from textclf.artifact import MANIFEST
from textclf.errors import InputError


@dataclass
class Predictor:
    model: torch.nn.Module
    tokenizer: object
    max_length: int

    @property
    def label_names(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    @torch.inference_mode()
    def probabilities(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Class probabilities, one row per text, columns in label order."""
        self.model.eval()
        rows = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer(texts[i:i + batch_size], truncation=True, max_length=self.max_length,
                                   padding=True, return_tensors="pt", return_token_type_ids=False)
            rows.append(self.model(**batch).logits.float().softmax(-1))
        return torch.cat(rows) if rows else torch.empty(0, len(self.label_names))

    def predict(self, texts: list[str]) -> list[dict]:
        probs = self.probabilities(texts)
        names = self.label_names
        return [{"text": t, "label": names[int(p.argmax())], "score": float(p.max()),
                 "probabilities": dict(zip(names, map(float, p)))} for t, p in zip(texts, probs)]


def predictor_from_dir(directory: Path) -> Predictor:
    """A model saved in textclf's own form (artifact.py): custom heads and peft adapters."""
    from textclf.artifact import load_model_dir

    return Predictor(*load_model_dir(directory))


def load_predictor(model_uri: str) -> Predictor:
    import mlflow
    import transformers

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    transformers.utils.logging.disable_progress_bar()
    if (Path(model_uri) / MANIFEST).is_file():
        return predictor_from_dir(Path(model_uri))
    try:
        flavor = mlflow.models.get_model_info(model_uri).flavors
        if "transformers" not in flavor:  # textclf's own form behind a pyfunc model
            local = Path(mlflow.artifacts.download_artifacts(model_uri))
            return predictor_from_dir(local / "artifacts" / "model_dir")
        parts = mlflow.transformers.load_model(model_uri, return_type="components")
    except (mlflow.exceptions.MlflowException, OSError) as e:
        raise InputError([f"--model-uri: cannot load {model_uri!r} ({str(e).splitlines()[0][:300]}); give "
                          f"runs:/<run_id>/model from a textclf run, or a local model directory"]) from None
    config = flavor.get("python_function", {}).get("config") or {}
    max_length = int(config.get("max_length") or parts["tokenizer"].model_max_length)
    return Predictor(parts["model"], parts["tokenizer"], max_length)
