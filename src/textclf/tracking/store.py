"""Where runs go: the tracking URI (first that is set: --tracking-uri, $MLFLOW_TRACKING_URI,
tracking.uri in the config, then an embedded SQLite store `mlflow.db` in the working directory,
artifacts beside it in `mlartifacts/`), checked before anything is loaded, and the experiment
selected or created."""

from __future__ import annotations

import logging
import os
import sys
import time
import urllib.parse
from pathlib import Path

import mlflow
import requests

from textclf.errors import InputError, first_line
from textclf.tracking import queries
from textclf.tracking.liveness import reap
from textclf.tracking.logins import login_problem
from textclf.tracking.sync import journal_dir as sync_dir
from textclf.tracking.sync import sync

log = logging.getLogger(__name__)
# experiment tag that makes the MLflow 3 UI open the training-runs table instead of its GenAI view
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
TERMINAL_WAIT_S = 30.0  # startup_wait at a terminal
URI_SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks")


def startup_wait(outage_wait_s: float) -> float:
    """How long a command waits, before anything exists, for a server that has never answered:
    tracking.outage_wait_s for workers (a pod that starts before its server), at most
    TERMINAL_WAIT_S at a terminal, where a silent wait reads as a hang and the cause is usually a
    typo in the URI."""
    return (
        min(outage_wait_s, TERMINAL_WAIT_S)
        if sys.stdin is not None and sys.stdin.isatty()
        else outage_wait_s
    )


def resolve_uri(
    flag: str | None, configured: str | None = None, configured_at: str = "config"
) -> tuple[str, str]:
    """(URI, where it came from, for messages): `configured` is tracking.uri, set in
    `configured_at`."""
    if flag:
        return flag, f"--tracking-uri {flag}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ[
            "MLFLOW_TRACKING_URI"
        ], f"$MLFLOW_TRACKING_URI {os.environ['MLFLOW_TRACKING_URI']}"
    if configured:
        return configured, f"{configured_at}: tracking.uri {configured}"
    default = f"sqlite:///{Path('mlflow.db').resolve()}"
    return default, f"the default tracking store {default}"


def check_uri(
    uri: str, origin: str, must_exist: bool = False, timeout_s: float = 5.0, wait_s: float = 0.0
) -> None:
    """Before anything is loaded or created: a scheme MLflow knows; a server that answers (waiting,
    with backoff and one line per attempt, up to `wait_s`: tracking.outage_wait_s for commands that
    log) and accepts the login in MLFLOW_TRACKING_USERNAME/PASSWORD; for commands that only read
    (`must_exist`) a SQLite store that is there."""
    scheme = urllib.parse.urlparse(uri).scheme.split("+")[0].lower()
    if scheme not in URI_SCHEMES:
        raise InputError(
            [
                f"{origin}: unknown scheme {scheme!r}; use sqlite:///FILE (the default), "
                "http://HOST:PORT (textclf server), file:DIR or "
                "postgresql://USER@HOST/DB"
            ]
        )
    if scheme in ("http", "https"):
        _wait_for_server(uri, origin, timeout_s, wait_s)
        _check_login(uri, origin)
    if must_exist and scheme == "sqlite" and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise InputError(
            [
                f"{origin}: no MLflow tracking store there; run where mlflow.db is, or "
                "pass --tracking-uri"
            ]
        )


def _wait_for_server(uri: str, origin: str, timeout_s: float, wait_s: float) -> None:
    health, start, delay, attempt = uri.rstrip("/") + "/health", time.monotonic(), 2.0, 1
    while (problem := _unanswered(health, timeout_s)) is not None:
        waited = time.monotonic() - start
        if waited + delay > wait_s:
            raise InputError(
                [
                    f"{origin}: no MLflow tracking server answered GET {health} within "
                    f"{timeout_s:g} s "
                    f"({problem})"
                    + (f" for {waited:.0f} s (tracking.outage_wait_s)" if wait_s else "")
                    + "; start one (textclf server) or fix the URI"
                ]
            )
        log.warning(
            "tracking server %s not answering (%s): attempt %d, next in %.0f s, giving up "
            "after %.0f s (tracking.outage_wait_s; Ctrl-C stops)",
            uri,
            problem,
            attempt,
            delay,
            wait_s,
        )
        time.sleep(delay)
        delay, attempt = min(delay * 2, 60.0), attempt + 1


def _unanswered(health: str, timeout_s: float) -> str | None:
    """None when the server answered at all (logins and routing are its business), else why not."""
    try:
        requests.get(health, timeout=timeout_s, verify=_verify()).close()
        return None
    except requests.RequestException as e:
        return first_line(e, 120)


def _verify() -> bool | str:
    """MLflow's own client TLS settings: a custom CA bundle, or (for tests only) no verification."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return False
    return os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True


def _check_login(uri: str, origin: str) -> None:
    """One authenticated read, as MLflow's client makes it (MLFLOW_TRACKING_USERNAME/PASSWORD or
    _TOKEN)."""
    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except mlflow.exceptions.MlflowException as e:
        problem = login_problem(e.get_http_status_code(), origin)
        if problem:
            raise InputError([problem]) from None
        raise


def _check_can_log(experiment: str, origin: str) -> None:
    """A user who may read an experiment but not log to it learns so before any run exists:
    rewriting a tag the experiment already has is the one write that changes nothing."""
    found = queries.experiment(experiment)
    key = next(iter(EXPERIMENT_KIND))
    try:
        mlflow.MlflowClient().set_experiment_tag(
            found.experiment_id, key, found.tags.get(key, EXPERIMENT_KIND[key])
        )
    except mlflow.exceptions.MlflowException as e:
        problem = login_problem(e.get_http_status_code(), f"{origin}: experiment {experiment!r}")
        if problem:
            raise InputError([problem]) from None
        raise


def connect(uri: str, experiment: str, journal_dir: str | None = None) -> None:
    """Point MLflow at `uri` and select (or create) the experiment; replay the metric journals of
    processes that died during an outage (sync.py) and end the runs of processes that died (kill
    -9)."""
    mlflow.set_tracking_uri(uri)
    try:
        for item in (i for i in sync(uri, sync_dir(journal_dir)) if i.ended):
            log.warning(
                "run %s: %d metric values replayed from %s (%d were already logged); ended it %s",
                item.run_id,
                item.sent,
                item.path,
                item.already,
                item.end or "FAILED",
            )
    except Exception as e:  # a new run need not wait for an old one's metrics
        log.warning(
            "could not replay the metric journals of dead runs (%s); run textclf sync later",
            first_line(e),
        )
    if os.environ.get("MLFLOW_RUN_ID"):  # `mlflow run` made our run, in the experiment it was told
        return
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if uri.startswith("sqlite:///"):  # embedded store: artifacts next to the database file
            location = (
                (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
            )
        try:
            mlflow.create_experiment(experiment, artifact_location=location, tags=EXPERIMENT_KIND)
        # another worker may create it first, or no login
        except mlflow.exceptions.MlflowException as e:
            problem = login_problem(
                e.get_http_status_code(), f"tracking: experiment {experiment!r}"
            )
            if problem:
                raise InputError([problem]) from None
    if urllib.parse.urlparse(uri).scheme in ("http", "https"):
        _check_can_log(experiment, "tracking")
    mlflow.set_experiment(experiment)
    for run_id in reap(experiment):  # runs of processes that died without ending them (kill -9)
        log.warning("run %s had stopped sending heartbeats; ended it FAILED", run_id)


def connect_read(uri: str, origin: str) -> None:
    """For commands that only read (report, predict, reap): the store must exist, and nothing is
    created in it."""
    check_uri(uri, origin, must_exist=True)
    mlflow.set_tracking_uri(uri)


def attach_to_mlflow_run(name: str, text: str, uri: str) -> None:
    """Under `mlflow run`, keep a command's output in the run it created (else it stays empty)."""
    if os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run():
            mlflow.log_text(text, name)
