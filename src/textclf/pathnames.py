"""Names a user gives that textclf turns into paths or store entries: study names (reports/<name>,
the study's storage), experiment names (reports/<name> for `textclf report EXPERIMENT`), registered
model names. One rule for all of them, checked when the config or sweep file is read, so a name that
cannot become a path is refused before anything runs, not after the sweep (docs/reliability.md)."""
from __future__ import annotations

import re

MAX_CHARS = 100  # and at most 200 bytes in UTF-8: file systems allow 255 bytes per path part
ALLOWED = re.compile(r"\w[\w.-]*")


def name_problem(name: object) -> str | None:
    """Why `name` cannot name a path (one line, with the fix), or None."""
    text = str(name)
    if len(text) > MAX_CHARS or len(text.encode("utf-8")) > 2 * MAX_CHARS:
        return (f"{len(text)} characters; a name that becomes a path has at most {MAX_CHARS} (200 "
                "bytes in UTF-8): pick a shorter one")
    if not ALLOWED.fullmatch(text):
        return (f"{text!r} must be letters, digits, '.', '_' or '-', starting with a letter or "
                "digit (it becomes a path: reports/<name>, the registry); no '/', '..' or spaces")
    return None


def as_path_part(text: str) -> str:
    """A report directory's name for any target (a run id, an experiment made outside textclf):
    characters outside the rule replaced by '_', cut to MAX_CHARS."""
    part = re.sub(r"[^\w.-]+|^\.+", "_", text)[:MAX_CHARS]
    while len(part.encode("utf-8")) > 2 * MAX_CHARS:
        part = part[:-1]
    return part or "_"
