"""The commands around the runs: the tracking server, reaping and syncing runs, looking at data and
models."""

from __future__ import annotations

import click

from textclf.cli.base import _config_options, _load, cli
from textclf.errors import InputError


@cli.command("server")
@click.option(
    "--backend-store-uri",
    default="sqlite:///mlflow.db",
    show_default=True,
    help="Where runs are stored: sqlite:///FILE or postgresql://USER@HOST:PORT/DB.",
)
@click.option(
    "--artifacts",
    default="mlartifacts",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Local directory for run artifacts, served through the server.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; beyond loopback only with --auth (or --insecure-no-auth).",
)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--auth",
    is_flag=True,
    help="Require logins: MLflow's basic-auth app (users, per-experiment permissions); "
    "the admin password comes from $TEXTCLF_SERVER_ADMIN_PASSWORD or "
    "--admin-password-file.",
)
@click.option(
    "--admin-password-file",
    type=click.Path(dir_okay=False),
    help="File (mode 600) holding the admin user's password, read on the first --auth start.",
)
@click.option(
    "--default-permission",
    type=click.Choice(["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]),
    default="READ",
    show_default=True,
    help="With --auth: what a user may do on others' experiments.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Bind beyond loopback without logins (only behind a proxy that authenticates).",
)
def server_cmd(
    backend_store_uri,
    artifacts,
    host,
    port,
    workers,
    auth,
    admin_password_file,
    default_permission,
    insecure_no_auth,
) -> None:
    """Run an MLflow tracking server for textclf runs (foreground; Ctrl-C stops it)."""
    from textclf.tracking import auth as logins
    from textclf.tracking import server

    logins.check_binding(host, auth, insecure_no_auth)
    auth_env = None
    if auth:
        auth_env, database, first = logins.server_environment(
            backend_store_uri, logins.admin_password(admin_password_file), default_permission
        )
        click.echo(
            f"textclf server: logins required; users and permissions in {database}", err=True
        )
        if first:
            click.echo(logins.how_to_add_users(f"http://{host}:{port}"), err=True)
    server.serve(backend_store_uri, artifacts, host, port, workers, auth_env)


@cli.command("ui")
@click.option("--tracking-uri", help="MLflow tracking URI (default as for train).")
@click.option(
    "--experiment",
    default="textclf",
    show_default=True,
    help="The experiment whose runs table opens (a sweep's experiment, e.g. imdb-search).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1 (default: a free one)."
)
@click.option("--no-browser", is_flag=True, help="Print the URL only.")
def ui_cmd(tracking_uri, experiment, port, no_browser) -> None:
    """The MLflow UI on this project's runs: serves the store on 127.0.0.1, prints the experiment's
    URL, opens a browser where there is one; Ctrl-C stops it."""
    import tempfile
    import webbrowser
    from pathlib import Path

    from textclf.tracking import server, store

    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"ui: {origin}")
    log_path = Path(tempfile.gettempdir()) / "textclf-ui.log"
    proc, urls = server.ui(uri, experiment, log_path, port)
    try:  # the server stops however this ends (Ctrl-C while the lines are printed included)
        for name, url in urls.items():
            click.echo(f"MLflow UI, {name}: {url}")
        click.echo("Ctrl-C stops the server")
        if not no_browser:  # the newest sweep's view where there is one
            webbrowser.open(urls.get("sweep") or next(iter(urls.values())))
        if proc is not None:
            proc.wait()
    finally:
        if proc is not None:
            server.stop(proc)


@cli.command("reap")
@click.option("--experiment", required=True, help="Experiment whose runs are checked.")
@click.option("--tracking-uri", help="MLflow tracking URI (default as for train).")
def reap_cmd(experiment, tracking_uri) -> None:
    """End FAILED the RUNNING runs whose process died (no heartbeat for 4 of their intervals), e.g.
    from cron; every textclf train/sweep does the same for its experiment when it starts."""
    from textclf.tracking import liveness, store

    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"reap: {origin}")
    for run_id in liveness.reap(experiment):
        click.echo(f"run {run_id}: FAILED (no heartbeat)")


@cli.command("sync")
@click.option("--tracking-uri", help="MLflow tracking URI (default as for train).")
@click.option(
    "--journal-dir",
    type=click.Path(file_okay=False),
    help="Where runs keep unsent metrics (tracking.journal_dir; default $TEXTCLF_CACHE/journal).",
)
def sync_cmd(tracking_uri, journal_dir) -> None:
    """Send the metrics that runs killed during a tracking outage could not send (each (key, step)
    once), then end those runs FAILED; every textclf train/sweep does the same when it starts."""
    from textclf.tracking import store, sync

    uri, origin = store.resolve_uri(tracking_uri)
    store.connect_read(uri, f"sync: {origin}")
    done = sync.sync(uri, sync.journal_dir(journal_dir))
    for item in done:
        ended = (
            f"ended {item.end or 'FAILED'}"
            if item.ended
            else "nothing was unsent (the heartbeat reaper ends it)"
        )
        click.echo(
            f"run {item.run_id}: {item.sent} metric values sent, {item.already} already "
            f"there; {ended}"
        )
    if not done:
        click.echo(f"nothing to sync for {uri} in {sync.journal_dir(journal_dir)}")


@cli.group()
def data() -> None:
    """Look at a dataset before training on it."""


@data.command("inspect")
@_config_options
@click.option(
    "--data", "data_name", help="Dataset: mirror name, path, or hub name (sets data.name)."
)
@click.option(
    "--model", "model_name", help="Model whose tokenizer measures lengths (sets model.name)."
)
@click.option(
    "--max-length",
    "max_lengths",
    default="128,256,512",
    show_default=True,
    help="Comma-separated max lengths to report truncation rates for.",
)
@click.option("--sample", type=int, help="Tokenize at most this many texts per split.")
@click.option(
    "--output", type=click.Path(dir_okay=False), help="Also write the tables as JSON here."
)
def inspect_cmd(
    config_path, override, overrides, data_name, model_name, max_lengths, sample, output
) -> None:
    """Counts, token lengths, truncation, duplicates and label leaks of a dataset."""
    from pathlib import Path

    from textclf.inspect import as_json, inspect_data, render
    from textclf.model.build import load_backbone
    from textclf.tracking import store

    extra = [f"data.name={data_name}"] * bool(data_name) + [f"model.name={model_name}"] * bool(
        model_name
    )
    cfg = _load(config_path, [*override, *extra], overrides)
    try:
        lengths = [int(x) for x in max_lengths.split(",") if x.strip()]
    except ValueError:
        raise InputError(
            [f"--max-length: expected comma-separated integers, got {max_lengths!r}"]
        ) from None
    tables = inspect_data(cfg, load_backbone(cfg), lengths, sample)
    text = render(tables)
    click.echo(text)
    if output:
        Path(output).write_text(as_json(tables), encoding="utf-8")
    store.attach_to_mlflow_run(
        "data_inspect.txt", text, store.resolve_uri(None, cfg.tracking.uri)[0]
    )


@cli.group()
def model() -> None:
    """Look at a model before training it."""


@model.command("inspect")
@_config_options
@click.option(
    "--model", "model_name", help="Model: mirror name, path, or hub name (sets model.name)."
)
@click.option(
    "--freeze", help="What trains: presets and/or name patterns, comma-separated (model.freeze)."
)
@click.option("--head", help="auto, cls, mean, cnn or mlp (model.head).")
@click.option("--num-labels", default=2, show_default=True, help="Classes for the new head.")
@click.option("--all", "show_all", is_flag=True, help="Also list the frozen tensors.")
def model_inspect(
    config_path, override, overrides, model_name, freeze, head, num_labels, show_all
) -> None:
    """Which parameter tensors train under a freeze preset, head or peft method, without
    training."""
    from textclf.model.build import build_classifier, describe_trainable, load_backbone

    extra = (
        [f"model.name={model_name}"] * bool(model_name)
        + [f"model.freeze={freeze}"] * bool(freeze)
        + [f"model.head={head}"] * bool(head)
    )
    cfg = _load(config_path, [*override, *extra], overrides)
    built = build_classifier(load_backbone(cfg), tuple(f"label{i}" for i in range(num_labels)), cfg)
    click.echo(describe_trainable(built, show_all))
