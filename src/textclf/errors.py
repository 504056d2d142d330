"""The one exception type for bad user input."""
from __future__ import annotations

from collections.abc import Iterable


class InputError(Exception):
    """Bad input (config, data, model name): every problem found, one line each.

    The CLI prints the lines and exits with status 2, before any MLflow run or training starts.
    """

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (libraries write pages), or its type when it has
    none."""
    lines = str(e).strip().splitlines()
    return (lines[0][:limit] if lines else "") or type(e).__name__


def raise_if(problems: list[str]) -> None:
    if problems:
        raise InputError(problems)


class SweepStopped(Exception):
    """A sweep that cannot go on (too many failed trials in a row, a worker failed): exit 1 with the
    reason."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so runs end KILLED just as with Ctrl-C."""
