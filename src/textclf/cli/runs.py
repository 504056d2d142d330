"""The commands that train, search, report and predict."""

from __future__ import annotations

import json
import shlex

import click

from textclf.cli.base import _config_options, _overrides, cli


@cli.command()
@_config_options
@click.option(
    "--tracking-uri",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, tracking.uri, sqlite:///mlflow.db).",
)
@click.option(
    "--resume",
    metavar="RUN_ID",
    help="Continue this run (killed, or failed) from its last checkpoint (it ran with "
    "train.checkpoint=true); give the same config.",
)
def train(config_path, override, overrides, tracking_uri, resume) -> None:
    """Fine-tune one model and log params, metrics, plots and the model to MLflow."""
    from textclf import api

    result = api.train(
        config_path, _overrides(override, [], overrides), tracking_uri=tracking_uri, resume=resume
    )
    uri = result.tracking_uri
    click.echo(f"run {result.run_id} FINISHED in {uri} (scores with 95% intervals over the rows)")
    for key, text in result.scores():
        click.echo(f"  {key:22s} {text}")
    if result.model_uri:
        click.echo(
            f"model: runs:/{result.run_id}/model  (textclf predict --model-uri "
            f'runs:/{result.run_id}/model --tracking-uri {uri} "some text")'
        )


@cli.command("sweep")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option(
    "--n-trials",
    type=click.IntRange(min=0),
    default=0,
    help="Finished trials the study should have in all (default 0: study.n_trials, or "
    "the whole grid).",
)
@click.option(
    "--workers",
    default="1",
    show_default=True,
    help="Worker processes on this machine, all on the one study, one GPU each (i mod "
    "G); auto: one per GPU.",
)
@click.option(
    "--gpus", help="Comma-separated GPUs the workers may use (default: every visible GPU)."
)
@click.option(
    "--devices-per-trial",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes per trial (train.devices): K GPUs each on a GPU machine (each worker "
    "takes K of --gpus), K gloo processes on CPU.",
)
@click.option(
    "--storage", help="Optuna storage URL (default: study.storage, else sqlite:///optuna.db)."
)
@click.option("--tracking-uri", help="MLflow tracking URI (default as for train).")
@click.option("--overrides", default="", help="Config overrides for every trial in one string.")
@click.option(
    "-o",
    "--override",
    "override",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value of every trial (repeatable).",
)
@click.option(
    "--repeat-best",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="After the study, rerun the best K trials with more training seeds (seed noise).",
)
@click.option(
    "--seeds",
    default=3,
    show_default=True,
    type=click.IntRange(min=2),
    help="Seeds per repeated trial, the original included.",
)
@click.option(
    "--register-as",
    metavar="NAME",
    help="Register the best trial's model as a version of NAME (tracking.register_as); "
    "the alias champion moves to it when it beats the champion.",
)
@click.option("--worker-of", hidden=True, help="Internal: run as a worker of this parent run.")
@click.option(
    "--worker-index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="This command's index among the commands of one study (e.g. "
    "$SLURM_ARRAY_TASK_ID): distinct sampler seeds on every machine.",
)
def sweep_cmd(
    spec_path,
    n_trials,
    workers,
    gpus,
    devices_per_trial,
    storage,
    tracking_uri,
    overrides,
    override,
    repeat_best,
    seeds,
    register_as,
    worker_of,
    worker_index,
) -> None:
    """Run (or resume) the Optuna study in SPEC: one MLflow parent run, one child run per trial."""
    from textclf import api

    request = api.SweepRequest(
        spec_path,
        (*override, *shlex.split(overrides or "")),
        n_trials=n_trials or None,
        workers=workers,
        gpus=gpus,
        devices_per_trial=devices_per_trial,
        storage=storage,
        tracking_uri=tracking_uri,
        register_as=register_as,
        repeat_best=repeat_best,
        seeds=seeds,
        worker_of=worker_of,
        worker_index=worker_index,
    )
    table = api.sweep(request)
    if table.attrs.get("summary"):
        click.echo(table.attrs["summary"])


@cli.command("report")
@click.argument("target")
@click.option("--tracking-uri", help="MLflow tracking URI (default as for train).")
@click.option(
    "--storage",
    help="Optuna storage URL of the study (default: the parent run's study.storage tag).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    help="Directory for the report (default reports/<name>).",
)
@click.option(
    "--log/--no-log",
    "log_to_parent",
    default=True,
    show_default=True,
    help="Attach the report to the sweep's parent run as report/.",
)
def report_cmd(target, tracking_uri, storage, output, log_to_parent) -> None:
    """Leaderboard and plots for TARGET: a sweep's parent run id, a study or an experiment name."""
    import pandas as pd

    from textclf import api

    done = api.write_report(
        target, tracking_uri=tracking_uri, storage=storage, output=output, attach=log_to_parent
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 4):
        click.echo(done.table.drop(columns=["run_id"]).to_string(index=False))
    for line in done.readings:
        click.echo(line)
    click.echo(f"\nreport: {done.path} (tables and plots in {done.path.parent})")
    if done.attached_to:
        click.echo(f"attached to parent run {done.attached_to} as report/")


@cli.command("compare")
@click.argument("a")
@click.argument("b")
@click.option(
    "--split",
    type=click.Choice(["val", "test"]),
    default="val",
    show_default=True,
    help="Which evaluation rows to pair (val: the selected epoch's validation rows, for "
    "choosing; test: for reporting a choice already made).",
)
@click.option(
    "--metric",
    type=click.Choice(["accuracy", "f1", "loss"]),
    help="The metric that decides (default: the runs' objective's; the others are "
    "secondary, Holm-adjusted).",
)
@click.option("--tracking-uri", help="MLflow tracking URI (default as for train).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the text.")
def compare_cmd(a, b, split, metric, tracking_uri, as_json) -> None:
    """Is B better than A, on the same rows? A and B are each one run (id, runs:/<id>,
    models:/NAME/<version>, models:/NAME@champion): are these two trained models different (paired
    tests on the rows)? Or each a comma-separated list of runs of one configuration with different
    train.seed: is configuration B better (a t test over seeds with the rows' paired noise)? Runs
    scored on other rows: one line, exit 2."""
    from textclf.api import compare
    from textclf.reporting.verdicts import as_text

    result = compare(a, b, split=split, metric=metric, tracking_uri=tracking_uri)
    click.echo(json.dumps(result, indent=1) if as_json else as_text(result))


@cli.command()
@click.option(
    "--model-uri", required=True, help="runs:/<run_id>/model, models:/<id>, or a local model dir."
)
@click.option("--tracking-uri", help="Where runs:/ URIs are looked up (default as for train).")
@click.option(
    "--input",
    "input_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Classify each non-empty line of this UTF-8 file ('-' for stdin).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per text, with all class probabilities.",
)
@click.argument("texts", nargs=-1)
def predict(model_uri, tracking_uri, input_file, as_json, texts) -> None:
    """Classify TEXTS with a logged model."""
    from textclf import api

    rows = api.predict(model_uri, texts, tracking_uri=tracking_uri, input_file=input_file)
    for row in rows:
        click.echo(
            json.dumps(row)
            if as_json
            else f"{row['label']}\t{row['score']:.4f}\t{row['text'][:100]}"
        )
