"""The one exception type for bad user input."""

from __future__ import annotations

import re
from collections.abc import Iterable

# control characters a user's key or value may carry (a YAML key "\r", a pasted override): each
# problem stays one line on the terminal and in logs
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class InputError(Exception):
    """Bad input (config, data, model name): every problem found, one line each.

    The CLI prints the lines and exits with status 2, before any MLflow run or training starts.
    """

    def __init__(self, problems: Iterable[str]):
        self.problems = [one_line(p) for p in problems]
        super().__init__("\n".join(self.problems))


def one_line(text: str) -> str:
    """`text` with control characters (line breaks among them) written as escapes: \\n, \\x00."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (libraries write pages), or its type without one."""
    lines = str(e).strip().splitlines()
    return (lines[0][:limit] if lines else "") or type(e).__name__


def raise_if(problems: list[str]) -> None:
    if problems:
        raise InputError(problems)


class SweepStopped(Exception):
    """A sweep that cannot go on (too many failed trials in a row, a failed worker): exit 1, why."""


class RanksFailed(Exception):
    """A run on several processes lost a rank (an error, a kill): exit 1, which rank and how."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so runs end KILLED just as with Ctrl-C."""
