"""Models in MLflow: log a fine-tuned classifier (safetensors weights + tokenizer) as the
transformers flavor, or textclf's own saved form (custom heads, peft) behind a pyfunc "model from
code"; load either back."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import mlflow
import pandas as pd
import torch
import transformers
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from textclf.errors import InputError, first_line
from textclf.model import saved
from textclf.model.files import damaged

MODEL_ARTIFACT = "model"
# text in; label and score out: `mlflow models serve` validates requests against it
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text")]),
    outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")]),
)


def inference_config(max_length: int) -> dict[str, object]:
    """The transformers flavor's pipeline settings; MLflow also logs them as params, so every run
    logs them at its start too (runs.log_setup): a run that keeps no model then does not differ in
    them, and MLflow's compare view (it plots the first differing params) shows what was varied."""
    return {"truncation": True, "max_length": max_length}


def log_model(
    model: torch.nn.Module,
    tokenizer,
    max_length: int,
    base: str,
    save_base: bool,
    examples: list[str],
) -> str:
    """Into the active run, with the signature and `examples` (a few texts) as the input example;
    returns the model URI."""
    model = model.to("cpu").eval()
    example = pd.DataFrame({"text": [t[:300] for t in examples]})
    if not saved.is_plain(model):
        return _log_textclf_model(model, tokenizer, max_length, base, save_base, example)
    quiet = logging.getLogger("mlflow.transformers")
    # model card / license lookups fail offline: harmless
    level, quiet.level = quiet.level, logging.ERROR
    try:
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer},
            name=MODEL_ARTIFACT,
            task="text-classification",
            pip_requirements=requirements(),
            signature=SIGNATURE,
            input_example=example,
            model_config=inference_config(max_length),
        )
    finally:
        quiet.level = level
    return info.model_uri


def _log_textclf_model(
    model, tokenizer, max_length: int, base: str, save_base: bool, example
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "model_dir"
        saved.save_model_dir(model, tokenizer, directory, max_length, base, save_base)
        mlflow.log_metric("model_artifact_mb", saved.size_mb(directory))
        with warnings.catch_warnings():  # it asks for type hints, which would make it coerce inputs
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={"model_dir": str(directory)},
                pip_requirements=requirements(),
                signature=SIGNATURE,
                input_example=example,
            )
    return info.model_uri


def delete(model_uri: str) -> bool:
    """A logged model (models:/m-...) marked deleted and, in a local artifact store, its files
    removed (a server's store keeps them until its `mlflow gc`). False when it was gone already."""
    client = mlflow.MlflowClient()
    model_id = model_uri.removeprefix("models:/")
    try:
        location = client.get_logged_model(model_id).artifact_location
        client.delete_logged_model(model_id)
    except mlflow.exceptions.MlflowException:
        return False
    if location.startswith("file://"):
        shutil.rmtree(Path(location.removeprefix("file://")).parent, ignore_errors=True)
    return True


def requirements() -> list[str]:
    # given explicitly: MLflow's inference imports torchvision, which is not installed
    # (shared/NOTES.md). textclf itself is not listed: the logged model is a plain transformers
    # model and textclf is not on PyPI
    return [
        f"torch=={torch.__version__.split('+')[0]}",
        f"transformers=={transformers.__version__}",
        f"mlflow=={mlflow.__version__}",
    ]


def load_predictor(model_uri: str) -> saved.Predictor:
    """runs:/<id>/model, models:/..., or a local directory in textclf's saved form."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    transformers.utils.logging.disable_progress_bar()
    if (Path(model_uri) / saved.MANIFEST).is_file():
        return _from_dir(Path(model_uri), f"--model-uri {model_uri}")
    where = f"--model-uri {model_uri}"
    try:
        flavor = mlflow.models.get_model_info(model_uri).flavors
        # local files first: a model whose upload a full disk cut short is refused, never loaded
        local = Path(mlflow.artifacts.download_artifacts(model_uri))
        if "transformers" not in flavor:  # textclf's own form behind a pyfunc model
            return _from_dir(local / "artifacts" / "model_dir", where)
        problem = damaged(local)
        if problem:
            raise InputError([f"{where}: {problem}"])
        with saved.hub_kernels_off():
            parts = mlflow.transformers.load_model(str(local), return_type="components")
    except (mlflow.exceptions.MlflowException, OSError) as e:
        raise InputError(
            [
                f"--model-uri: cannot load {model_uri!r} ({first_line(e, 300)}); give "
                "runs:/<run_id>/model from a textclf run, or a local model directory"
            ]
        ) from None
    config = flavor.get("python_function", {}).get("config") or {}
    max_length = int(config.get("max_length") or parts["tokenizer"].model_max_length)
    return saved.Predictor(parts["model"], parts["tokenizer"], max_length)


def _from_dir(directory: Path, where: str) -> saved.Predictor:
    """textclf's saved form, its files checked first: a damaged one is one line naming it."""
    problem = damaged(directory)
    if problem:
        raise InputError([f"{where}: {problem}"])
    return saved.predictor_from_dir(directory)
