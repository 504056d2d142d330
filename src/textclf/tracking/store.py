"""Where runs go: the tracking URI (first that is set: --tracking-uri, $MLFLOW_TRACKING_URI, tracking.uri in the
config, then an embedded SQLite store `mlflow.db` in the working directory, artifacts beside it in
`mlartifacts/`), checked before anything is loaded, and the experiment selected or created."""
from __future__ import annotations

import contextlib
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow

from textclf.config import Config
from textclf.errors import InputError
from textclf.tracking.liveness import reap

log = logging.getLogger(__name__)
# experiment tag that makes the MLflow 3 UI open the training-runs table instead of its GenAI view
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
URI_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def tracking_uri(flag: str | None, cfg: Config) -> str:
    return resolve_uri(flag, cfg)[0]


def resolve_uri(flag: str | None, cfg: Config) -> tuple[str, str]:
    """(URI, where it came from, for messages)."""
    if flag:
        return flag, f"--tracking-uri {flag}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], f"$MLFLOW_TRACKING_URI {os.environ['MLFLOW_TRACKING_URI']}"
    if cfg.tracking.uri:
        return cfg.tracking.uri, f"{cfg.where('tracking.uri')}: tracking.uri {cfg.tracking.uri}"
    default = f"sqlite:///{Path('mlflow.db').resolve()}"
    return default, f"the default tracking store {default}"


def check_uri(uri: str, origin: str, must_exist: bool = False, timeout_s: float = 5.0) -> None:
    """Before anything is loaded or created: a scheme MLflow knows, a server that answers (one request with
    a short timeout), and for commands that only read (`must_exist`) a SQLite store that is there."""
    scheme = urllib.parse.urlparse(uri).scheme.split("+")[0].lower()
    if scheme not in URI_SCHEMES:
        raise InputError([f"{origin}: unknown scheme {scheme!r}; use sqlite:///FILE (the default), http://HOST:PORT "
                          f"(textclf server), file:DIR or postgresql://USER@HOST/DB"])
    if scheme in ("http", "https"):
        health = uri.rstrip("/") + "/health"
        try:
            urllib.request.urlopen(health, timeout=timeout_s).close()
        except urllib.error.HTTPError:
            pass  # a server answered (authentication or routing is its business)
        except (urllib.error.URLError, OSError) as e:
            raise InputError([f"{origin}: no MLflow tracking server answered GET {health} within {timeout_s:g} s "
                              f"({getattr(e, 'reason', e)}); start one (textclf server) or fix the URI"]) from None
    if must_exist and scheme == "sqlite" and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise InputError([f"{origin}: no MLflow tracking store there; run where mlflow.db is, or pass --tracking-uri"])


def connect(uri: str, experiment: str) -> None:
    """Point MLflow at `uri` and select (or create) the experiment; end the runs of processes that died."""
    mlflow.set_tracking_uri(uri)
    if os.environ.get("MLFLOW_RUN_ID"):  # `mlflow run` made our run, in the experiment it was told
        return
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if uri.startswith("sqlite:///"):  # embedded store: artifacts next to the database file
            location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # another worker may create it first
            mlflow.create_experiment(experiment, artifact_location=location, tags=EXPERIMENT_KIND)
    mlflow.set_experiment(experiment)
    for run_id in reap(experiment):  # runs of processes that died without ending them (kill -9)
        log.warning("run %s had stopped sending heartbeats; ended it FAILED", run_id)


def connect_read(uri: str, origin: str) -> None:
    """For commands that only read (report, predict, reap): the store must exist; nothing is created."""
    check_uri(uri, origin, must_exist=True)
    mlflow.set_tracking_uri(uri)
