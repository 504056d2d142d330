"""The `textclf` command group and the options its commands share."""

from __future__ import annotations

import shlex

import click


def _config_options(f):
    f = click.option(
        "--overrides",
        default="",
        help='Overrides in one string: "train.epochs=1 data.seed=3" (for MLproject).',
    )(f)
    f = click.option(
        "-o",
        "--override",
        "override",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a config value, e.g. -o train.learning_rate=3e-5 (repeatable).",
    )(f)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        help="YAML file of config changes from the defaults.",
    )(f)


def _overrides(override, extra, overrides) -> list[str]:
    """-o values, then the command's own (--model, --freeze, ...), then --overrides' pairs."""
    return [*override, *extra, *shlex.split(overrides or "")]


@click.group()
@click.version_option(package_name="textclf")
def cli() -> None:
    """Fine-tune BERT-family text classifiers; every run tracked in MLflow."""
