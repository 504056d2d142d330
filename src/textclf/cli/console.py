"""How the command line talks: textclf's own lines on stderr, the libraries' chatter and
experimental-feature warnings silenced (they speak up at WARNING)."""

from __future__ import annotations

import logging
import os
import sys
import warnings


def quiet_libraries() -> None:
    """One line per event from textclf on stderr; the libraries speak only when something fails."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for name in ("mlflow", "alembic", "httpx", "urllib3", "datasets"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.ERROR)  # textclf logs one line per trial itself
    # read by transformers at import: hides its load reports and long-input warnings
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read by mlflow at import
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
    warnings.filterwarnings("ignore", message=".*heartbeat_interval.* is an experimental feature")
    warnings.filterwarnings("ignore", message=".*fail_stale_trials is experimental")
    warnings.filterwarnings("ignore", message=".*Retry.*Callback.* is experimental")
