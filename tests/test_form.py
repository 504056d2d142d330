"""The code's form, owned by tools: ruff formats and lints src, tests and bench; mypy checks
src/textclf (both run first in .ci/run and in the pre-commit hooks). What no tool checks is
measured here: docstrings read as prose, and no expression is split over more than two
indentation levels."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
import yaml

from test_project import readme_commands

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "textclf"
CHECKED = ("src", "tests", "bench")


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_ruff_passes(command):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *CHECKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def form_command() -> str:
    """The README's form check: ruff, then mypy."""
    return next(c for c in readme_commands() if "ruff format --check" in c)


def test_ci_checks_the_form_first():
    """.ci/run runs the README's form check (ruff on src, tests and bench, then mypy) after the
    install and before either suite."""
    command = form_command()
    assert all(f" {d}" in command for d in CHECKED) and "mypy" in command
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    first_suite = next(i for i, line in enumerate(lines) if "python -m pytest" in line)
    assert command in lines[:first_suite]


def test_pre_commit_runs_the_same_tools():
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [h["entry"] for repo in hooks["repos"] for h in repo["hooks"]]
    assert any(e.startswith("ruff format") for e in entries), entries
    assert any(e.startswith("ruff check") for e in entries), entries
    assert any(e.startswith("mypy") for e in entries), entries


def paragraphs(doc: str) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in doc.splitlines():
        if line.strip():
            out[-1].append(line.strip())
        elif out[-1]:
            out.append([])
    return [p for p in out if p]


# a list item, a table row, a quoted or shell line, a "key: value" line, a call or a literal
NOT_PROSE = re.compile(r"^([-*|>]|\d+[.)]|\w[\w.]*:\s|\$|\w+\(|[{\[])")


def prose_paragraphs(path: Path) -> list[list[str]]:
    """The docstring paragraphs of `path` that are prose: more than one line, none of them a
    list item, table row, command or code."""
    nodes = ast.walk(ast.parse(path.read_text()))
    documented = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    docs = [ast.get_docstring(n) for n in nodes if isinstance(n, documented)]
    return [
        p
        for doc in docs
        if doc
        for p in paragraphs(doc)
        if len(p) > 1 and not any(NOT_PROSE.match(line) for line in p)
    ]


def test_docstrings_read_as_prose():
    """At most a fifth of the prose paragraphs in src end in a line of one or two words (the mark
    of a hand-made wrap; optuna's source: 18%)."""
    found = [p for path in sorted(PACKAGE.rglob("*.py")) for p in prose_paragraphs(path)]
    orphans = [p for p in found if len(p[-1].split()) <= 2]
    assert len(found) > 200  # the measure sees the docstrings
    assert len(orphans) / len(found) <= 0.20, [p[-2:] for p in orphans]


def continuation_levels(source: str) -> list[tuple[int, list[int]]]:
    """(line, indents) of every bracket (a call's parentheses, a group, a literal) whose lines sit
    at more than two indentation levels, its opening line's included: a call or a string split by
    hand over several indentations. A line is a bracket's own when the bracket is the innermost one
    open where the line starts; nested brackets count for themselves, and lines inside a
    multi-line string do not count."""
    lines = source.split("\n")
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    strings = (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING))
    in_string = {
        n for t in tokens if t.type in strings for n in range(t.start[0] + 1, t.end[0] + 1)
    }
    own: dict[int, set[int]] = {}  # an open bracket's line -> the indents of its own lines
    open_at: list[int] = []
    seen = set()
    for token in tokens:
        row = token.start[0]
        if token.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            continue
        if open_at and row not in seen and row not in in_string and row != open_at[-1]:
            line = lines[row - 1]
            if line.strip()[0] not in ")]}":
                own[open_at[-1]].add(len(line) - len(line.lstrip()))
        seen.add(row)
        if token.type == tokenize.OP and token.string in "([{":
            open_at.append(row)
            opener = lines[row - 1]  # its first line counts as one of its levels
            own.setdefault(row, {len(opener) - len(opener.lstrip())})
        elif token.type == tokenize.OP and token.string in ")]}":
            open_at.pop()
    return [(row, sorted(levels)) for row, levels in sorted(own.items()) if len(levels) > 2]


@pytest.mark.parametrize("tree", CHECKED)
def test_no_expression_spans_more_than_two_indentation_levels(tree):
    found = {
        str(path.relative_to(ROOT)): bad
        for path in sorted((ROOT / tree).rglob("*.py"))
        if (bad := continuation_levels(path.read_text()))
    }
    assert not found, found


def test_the_level_measure_sees_a_mangled_call():
    """The measure above flags a string split over three indentations inside one call (the old
    wrap's damage) and passes the formatter's own nesting of calls and data."""
    mangled = 'x = f(\n    "a"\n        "b"\n            "c",\n    g(1),\n)\n'
    formatted = 'x = f(\n    "a" "b",\n    g(\n        h(\n            1,\n        ),\n    ),\n)\n'
    data = 'x = f(\n    {\n        "a": [\n            1,\n        ],\n    },\n)\n'
    assert continuation_levels(mangled) == [(1, [0, 4, 8, 12])]
    assert continuation_levels(formatted) == []
    assert continuation_levels(data) == []
