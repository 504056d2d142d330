"""The jobs around the runs: a tracking server, the MLflow UI on this project's store, reaping and
syncing runs, and looking at data and models before training (what `textclf server`, `ui`, `reap`,
`sync`, `data inspect` and `model inspect` run)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from textclf.config import load_config
from textclf.errors import InputError


def serve(
    backend_store_uri: str = "sqlite:///mlflow.db",
    artifacts: str = "mlartifacts",
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    *,
    auth: bool = False,
    admin_password_file: str | None = None,
    default_permission: str = "READ",
    insecure_no_auth: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """An MLflow tracking server in the foreground until Ctrl-C: beyond loopback only with logins
    (`auth`, MLflow's basic-auth app) or `insecure_no_auth`. `say` gets what the operator should
    read first (where the logins live, how to add users)."""
    from textclf.ops import auth as logins
    from textclf.ops import server

    logins.check_binding(host, auth, insecure_no_auth)
    auth_env = None
    if auth:
        auth_env, database, first = logins.server_environment(
            backend_store_uri, logins.admin_password(admin_password_file), default_permission
        )
        say(f"textclf server: logins required; users and permissions in {database}")
        if first:
            say(logins.how_to_add_users(f"http://{host}:{port}"))
    server.serve(backend_store_uri, artifacts, host, port, workers, auth_env)


@dataclass
class UiSession:
    """The MLflow UI `ui` started: the URLs to open (name -> URL, each in the model-training
    layout) and the server process (None when the store is a server already)."""

    urls: dict[str, str]
    proc: subprocess.Popen | None = None

    def wait(self) -> None:
        if self.proc is not None:
            self.proc.wait()

    def stop(self) -> None:
        from textclf.ops import server

        if self.proc is not None:
            server.stop(self.proc)


def ui(
    tracking_uri: str | None = None, experiment: str | None = "textclf", port: int | None = None
) -> UiSession:
    """The MLflow UI on this project's store: a local store (SQLite, PostgreSQL) gets its own server
    on 127.0.0.1 and a free port unless `port`; an http(s) store is one already. Its URLs: the
    experiment's runs, its newest sweep's saved view and charts (tracking/saved_view.py)."""
    from textclf.ops import server
    from textclf.tracking import saved_view, store

    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"ui: {origin}")
    proc = None
    if uri.startswith(("http://", "https://")):  # already a server
        base = uri.rstrip("/")
    else:  # artifacts from mlartifacts/ beside a SQLite file, else in the working directory
        near = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else None
        log_path = Path(tempfile.gettempdir()) / "textclf-ui.log"
        proc, base = server.start(uri, (near or Path.cwd()) / "mlartifacts", log_path, port=port)
    try:
        urls = {name: f"{base}/{route}" for name, route in saved_view.ui_routes(experiment).items()}
    except BaseException:
        if proc is not None:
            server.stop(proc)
        raise
    return UiSession(urls, proc)


def reap(experiment: str, tracking_uri: str | None = None) -> list[str]:
    """End FAILED the RUNNING runs of `experiment` whose process died (no heartbeat for 4 of their
    intervals); returns their ids."""
    from textclf.tracking import liveness, store

    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"reap: {origin}")
    return liveness.reap(experiment)


@dataclass(frozen=True)
class Synced:
    uri: str  # the tracking store the metrics went to
    journal: Path  # where the unsent metrics were kept
    runs: list  # tracking/sync.py Replayed: per run, what was sent and how it ended


def sync(tracking_uri: str | None = None, journal_dir: str | None = None) -> Synced:
    """Send the metrics that runs killed during a tracking outage could not send (each (key, step)
    once), then end those runs FAILED."""
    from textclf.tracking import store
    from textclf.tracking import sync as journals

    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"sync: {origin}")
    journal = journals.journal_dir(journal_dir)
    return Synced(uri, journal, journals.sync(uri, journal))


def inspect_data(
    config: str | None = None,
    overrides: Sequence[str] = (),
    max_lengths: Sequence[int] = (128, 256, 512),
    sample: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Counts per split and label, token lengths and truncation rates per max length (the model's
    tokenizer), duplicates within and across splits, label names leaking into the text; under
    `mlflow run` the text is kept in its run."""
    from textclf.inspect import inspect_data as tables_of
    from textclf.inspect import render
    from textclf.model.build import load_backbone
    from textclf.tracking import store

    if not max_lengths or any(length < 1 for length in max_lengths):
        raise InputError([f"--max-length: expected positive integers, got {list(max_lengths)}"])
    cfg = load_config(config, list(overrides))
    tables = tables_of(cfg, load_backbone(cfg.model, cfg.data), list(max_lengths), sample)
    store.attach_to_mlflow_run(
        "data_inspect.txt", render(tables), store.resolve_uri(None, cfg.tracking.uri)[0]
    )
    return tables


def inspect_model(
    config: str | None = None,
    overrides: Sequence[str] = (),
    num_labels: int = 2,
    show_all: bool = False,
) -> str:
    """Which parameter tensors train under the config's freeze preset, head and peft method, built
    without training (the frozen ones too with `show_all`)."""
    from textclf.model.build import build_classifier, describe_trainable, load_backbone

    cfg = load_config(config, list(overrides))
    labels = tuple(f"label{i}" for i in range(num_labels))
    return describe_trainable(
        build_classifier(load_backbone(cfg.model, cfg.data), labels, cfg.model), show_all
    )
