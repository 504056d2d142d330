"""The commands around the runs: the tracking server and UI, reaping and syncing runs, and looking
at data and models before training (each through api/tools.py)."""

from __future__ import annotations

import click

from textclf.cli.base import _config_options, _overrides, cli
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
    from textclf import api

    api.serve(
        backend_store_uri,
        artifacts,
        host,
        port,
        workers,
        auth=auth,
        admin_password_file=admin_password_file,
        default_permission=default_permission,
        insecure_no_auth=insecure_no_auth,
        say=lambda line: click.echo(line, err=True),
    )


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
    import webbrowser

    from textclf import api

    session = api.ui(tracking_uri, experiment, port)
    try:  # the server stops however this ends (Ctrl-C while the lines are printed included)
        for name, url in session.urls.items():
            click.echo(f"MLflow UI, {name}: {url}")
        click.echo("Ctrl-C stops the server")
        if not no_browser:  # the newest sweep's view where there is one
            webbrowser.open(session.urls.get("sweep") or next(iter(session.urls.values())))
        session.wait()
    finally:
        session.stop()


@cli.command("reap")
@click.option("--experiment", required=True, help="Experiment whose runs are checked.")
@click.option("--tracking-uri", help="MLflow tracking URI (default as for train).")
def reap_cmd(experiment, tracking_uri) -> None:
    """End FAILED the RUNNING runs whose process died (no heartbeat for 4 of their intervals), e.g.
    from cron; every textclf train/sweep does the same for its experiment when it starts."""
    from textclf import api

    for run_id in api.reap(experiment, tracking_uri):
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
    from textclf import api

    done = api.sync(tracking_uri, journal_dir)
    for item in done.runs:
        ended = (
            f"ended {item.end or 'FAILED'}"
            if item.ended
            else "nothing was unsent (the heartbeat reaper ends it)"
        )
        click.echo(
            f"run {item.run_id}: {item.sent} metric values sent, {item.already} already "
            f"there; {ended}"
        )
    if not done.runs:
        click.echo(f"nothing to sync for {done.uri} in {done.journal}")


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

    from textclf import api
    from textclf.inspect import as_json, render

    extra = [f"data.name={data_name}"] * bool(data_name) + [f"model.name={model_name}"] * bool(
        model_name
    )
    try:
        lengths = [int(x) for x in max_lengths.split(",") if x.strip()]
    except ValueError:
        raise InputError(
            [f"--max-length: expected comma-separated integers, got {max_lengths!r}"]
        ) from None
    tables = api.inspect_data(config_path, _overrides(override, extra, overrides), lengths, sample)
    click.echo(render(tables))
    if output:
        Path(output).write_text(as_json(tables), encoding="utf-8")


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
    """Which parameter tensors train under a freeze preset, head or peft method (no training)."""
    from textclf import api

    extra = (
        [f"model.name={model_name}"] * bool(model_name)
        + [f"model.freeze={freeze}"] * bool(freeze)
        + [f"model.head={head}"] * bool(head)
    )
    overrides_ = _overrides(override, extra, overrides)
    click.echo(api.inspect_model(config_path, overrides_, num_labels, show_all))
