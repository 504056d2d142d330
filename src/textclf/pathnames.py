"""Names a user gives that textclf turns into paths or store entries, one rule in one place, checked
when the config or sweep file is read, so a name that cannot become a path is refused before
anything runs, not after the sweep (docs/reliability.md):
- study names and registered model names become paths and URLs as they are (reports/<name>, the
  registry's /models/<name> pages): letters, digits, '.', '_', '-', at most 100 characters;
- experiment names are MLflow's (spaces, and '/' in Databricks paths, are theirs to allow): at
  most 100 characters and no control characters; the report directory made from one goes through
  `as_path_part`, which applies the strict rule.
Both lengths are also at most 200 bytes in UTF-8: file systems allow 255 bytes per path part."""

from __future__ import annotations

import re

from textclf.errors import CONTROL

MAX_CHARS = 100
ALLOWED = re.compile(r"\w[\w.-]*")


def name_problem(name: object, strict: bool = True) -> str | None:
    """Why `name` cannot be used (one line, with the fix), or None. `strict`: the name becomes a
    path as it is (study, registered model); else it is a store entry (experiment)."""
    text = str(name)
    if len(text) > MAX_CHARS or len(text.encode("utf-8")) > 2 * MAX_CHARS:
        return (
            f"{len(text)} characters; a name that becomes a path has at most {MAX_CHARS} (200 "
            "bytes in UTF-8): pick a shorter one"
        )
    if strict and not ALLOWED.fullmatch(text):
        return (
            f"{text!r} must be letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it becomes a path: reports/<name>, the registry); no '/', '..' or spaces"
        )
    if not strict and (CONTROL.search(text) or not text.strip()):
        return f"{text!r} has control characters or is blank; use printable characters"
    return None


def as_path_part(text: str) -> str:
    """A report directory's name for any target (a run id, an experiment name): characters outside
    the strict rule replaced by '_', cut to MAX_CHARS."""
    part = re.sub(r"[^\w.-]+|^\.+", "_", text)[:MAX_CHARS]
    while len(part.encode("utf-8")) > 2 * MAX_CHARS:
        part = part[:-1]
    return part or "_"
