"""Process environment variables set for the length of a block, each put back as it was after."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def setting(added: dict[str, str]) -> Iterator[None]:
    """`added` in os.environ inside the block; after it, each of those keys is back to its value
    before (or unset). Only these keys: what the block set besides them stays (MLflow, for one,
    puts MLFLOW_TRACKING_URI there when its URI is set). Process-wide: main thread only."""
    saved = {key: os.environ.get(key) for key in added}
    os.environ.update(added)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
