"""`textclf predict`: classify texts with a logged model (runs:/<id>/model, models:/..., or a
directory in textclf's saved form); texts from arguments or a UTF-8 file, one per line."""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

from textclf.data.files import decode_utf8
from textclf.errors import InputError
from textclf.model.saved import Predictor
from textclf.tracking import models, store


def read_texts(texts: tuple[str, ...], input_file: str | None) -> list[str]:
    """Arguments, then the non-empty lines of `input_file` ('-': stdin); bad bytes are one line."""
    out = list(texts)
    if input_file:
        data = sys.stdin.buffer.read() if input_file == "-" else Path(input_file).read_bytes()
        out += [line.strip() for line in decode_utf8(data, input_file).splitlines() if line.strip()]
    if not out:
        raise InputError(["predict: no texts given; pass them as arguments or with --input FILE"])
    return out


def load_predictor(
    model_uri: str, tracking_uri: str | None = None, origin: str = "tracking URI"
) -> Predictor:
    """A local directory, or a model in MLflow (its store must exist; nothing is created)."""
    if not urllib.parse.urlparse(model_uri).scheme and not Path(model_uri).exists():  # a local path
        raise InputError(
            [
                f"--model-uri {model_uri}: no such model directory; give "
                "runs:/<run_id>/model, models:/<name>/<version> or a model directory"
            ]
        )
    if tracking_uri and model_uri.startswith(("runs:", "models:")):
        store.connect_read(tracking_uri, f"--model-uri {model_uri}: {origin}")
    return models.load_predictor(model_uri)
