"""The `textclf` command: a thin layer over the library. Bad input exits 2, Ctrl-C 130, SIGTERM
143. Commands live in runs.py (train, sweep, report, predict) and tools.py (server, reap, sync,
data, model)."""

from __future__ import annotations

import logging
import sys

import click

from textclf import interrupts
from textclf.cli import console, runs, tools  # noqa: F401  (registers the commands on the group)
from textclf.cli.base import cli
from textclf.errors import InputError, RanksFailed, SweepStopped, Terminated

__all__ = ["cli", "main"]
log = logging.getLogger("textclf")


def main(leave_at_once: bool = True) -> None:
    """The console script. Ctrl-C exits 130 and SIGTERM 143, even when Python swallows the first
    KeyboardInterrupt; `leave_at_once` ends an interrupted process without the interpreter's
    teardown (interrupts.leave; in-process callers such as the tests keep SystemExit)."""
    interrupts.install()
    console.quiet_libraries()
    try:
        cli(standalone_mode=False)
    except InputError as e:
        for problem in e.problems:
            click.echo(problem, err=True)
        sys.exit(2)
    except click.exceptions.Abort as e:  # click turns Ctrl-C (and our SIGTERM) into Abort
        click.echo("interrupted", err=True)
        terminated = interrupts.pending() is Terminated or isinstance(e.__context__, Terminated)
        code = 143 if terminated else 130
        if leave_at_once:
            interrupts.leave(code)
        sys.exit(code)
    except SweepStopped as e:
        click.echo(f"sweep stopped: {e}", err=True)
        sys.exit(1)
    except RanksFailed as e:
        click.echo(f"training failed: {e}", err=True)
        sys.exit(1)
    except click.UsageError as e:  # one line, as every refusal: what is wrong and where to look
        where = e.ctx.command_path if e.ctx else "textclf"
        click.echo(
            f"{where}: {' '.join(e.format_message().split())} (see {where} --help)", err=True
        )
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
