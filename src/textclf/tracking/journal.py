"""A run's per-epoch metrics on disk until the tracking server has them, so a process killed during
an outage loses nothing: one JSON-lines file per run (a header naming the tracking URI and run, then
one line per metric value), appended and fsync'd each epoch before training goes on, emptied once
the server confirmed every (key, step), removed when the run ends with nothing pending.

The writing process holds an exclusive lock on its journal for the run's whole life; the kernel
drops the lock when the process dies, however it dies. `replay` (textclf sync, and every textclf
train/sweep against the same tracking URI) takes only unlocked journals: those of dead processes. It
sends the (key, step) pairs the run does not have yet (exactly once) and ends the run as the reaper
would. No MLflow here: the caller passes in how to send, ask and end (sync.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)

Entry = tuple[str, float, int, int]  # (key, value, step, timestamp in ms), as spool.py


def default_dir() -> Path:
    """Beside the token cache: $TEXTCLF_CACHE/journal, else ~/.cache/textclf/journal."""
    return Path(os.environ.get("TEXTCLF_CACHE") or Path.home() / ".cache" / "textclf") / "journal"


def check_dir(directory: Path) -> str | None:
    """Why runs could not keep a journal there, or None."""
    if directory.exists() and not directory.is_dir():
        return f"{directory} is a file; name a directory"
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"{directory} cannot be created ({existing} is not a writable directory); name a "
            "writable directory"
        )
    return None


class Journal:
    """The open, locked journal of one running run. A safety net, not a result: when its disk is
    full or unwritable it is switched off with a warning (`broken` says why; the run is tagged) and
    the run goes on sending straight to the server."""

    def __init__(self, directory: Path, tracking_uri: str, run_id: str):
        self.path, self.broken = directory / f"{run_id}.jsonl", ""
        self.leftover: list[Entry] = []
        self._file: TextIO | None = None
        try:
            self._open(directory, tracking_uri, run_id)
        except OSError as e:
            self._break(e)

    def _open(self, directory: Path, tracking_uri: str, run_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)

        # held open for the run's lifetime (appends, and the lock); closed by close()
        self._file = f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115
        # waits only while a replay of a resumed run's journal runs
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        # a resumed run's unsent values
        _, self.leftover, _ = _parse(f.read().splitlines())
        f.seek(0)
        f.truncate()
        header = {
            "uri": tracking_uri,
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "created": time.time(),
        }
        self._write([header])
        self.append(self.leftover)

    def append(self, entries: list[Entry]) -> None:
        """Durable before training goes on: written, flushed and fsync'd."""
        if entries:
            self._write([list(e) for e in entries])

    def confirmed(self) -> None:
        """The server has every value written so far: keep only the header."""
        f = self._file
        if self.broken or f is None:
            return
        f.seek(0)
        first = f.readline()
        f.truncate(len(first.encode("utf-8")))
        f.seek(0, os.SEEK_END)
        os.fsync(f.fileno())

    def ending(self, status: str) -> None:
        """How the run meant to end, for a replay after this process could not tell the server."""
        self._write([{"end": status}])

    def close(self, remove: bool) -> None:
        if remove:
            self.path.unlink(missing_ok=True)
        if self._file is not None:
            # releases the lock; a broken journal's unflushed buffer cannot be written either
            with contextlib.suppress(OSError):
                self._file.close()

    def _write(self, lines: list) -> None:
        f = self._file
        if self.broken or f is None:
            return
        try:
            f.seek(0, os.SEEK_END)
            f.write("".join(json.dumps(line) + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        except OSError as e:
            self._break(e)

    def _break(self, error: OSError) -> None:
        self.broken = f"{self.path}: {error.strerror or error}"
        log.warning(
            "metric journal off for this run (%s): metrics go straight to the tracking "
            "server; free space there to keep them safe through an outage",
            self.broken,
        )


@dataclass
class Replayed:
    run_id: str
    path: Path
    sent: int  # values the server did not have
    already: int  # values it had (sent before the process died)
    end: str | None  # the status the process meant to end with, if it got that far
    # whether the replay ended the run (else nothing was unsent: the heartbeat reaper ends it)
    ended: bool


def unlocked(
    directory: Path, tracking_uri: str
) -> Iterator[tuple[Path, dict, list[Entry], str | None, object]]:
    """The journals of dead processes that logged to `tracking_uri`, each locked while the caller
    replays it: (path, header, entries, intended end status, open file). Unreadable lines (a torn
    last write) are skipped."""
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        try:
            f = open(path, encoding="utf-8")  # noqa: SIM115 (locked while replayed; closed below)
        except FileNotFoundError:
            continue  # replayed by another process meanwhile
        except OSError as e:  # a directory, no permission
            _move_aside(path, e.strerror or str(e))
            continue
        with f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            try:
                header, entries, end = _parse(f.read().splitlines())
            except UnicodeDecodeError as e:
                header, entries, end = (
                    {
                        "damaged": f"byte 0x{e.object[e.start]:02x} at offset "
                        f"{e.start} is not valid UTF-8"
                    },
                    [],
                    None,
                )
            if header is None or "damaged" in header:  # a dead process's journal has its header
                _move_aside(path, header["damaged"] if header else "no header line")
            elif header.get("uri") == tracking_uri and path.exists():
                yield path, header, entries, end, f


def _move_aside(path: Path, why: str) -> None:
    """A damaged journal is never replayed: renamed <name>.damaged (kept for a human to read)."""
    with contextlib.suppress(OSError):
        path.rename(path.with_name(path.name + ".damaged"))
        log.warning(
            "metric journal %s is damaged (%s): moved aside to %s.damaged, not replayed",
            path,
            why,
            path.name,
        )


def _parse(lines: list[str]) -> tuple[dict | None, list[Entry], str | None]:
    header, entries, end = None, [], None
    for line in lines:
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and "uri" in item:
            header = item
        elif isinstance(item, dict) and "end" in item:
            end = item["end"]
        elif isinstance(item, list) and len(item) == 4:
            try:
                entries.append((str(item[0]), float(item[1]), int(item[2]), int(item[3])))
            except (TypeError, ValueError):
                continue  # a damaged entry is not sent
    return header, entries, end


def replay(
    directory: Path,
    tracking_uri: str,
    send: Callable[[str, list[Entry]], None],
    known: Callable[[str, set[str]], set[tuple[str, int]] | None],
    end: Callable[[str, str | None, int], None],
) -> list[Replayed]:
    """Replay every dead process's journal for `tracking_uri`: send what the run lacks, end it (when
    it had unsent values or had said how it ends), remove the journal. `known` returns None for a
    run the server no longer has (its journal is dropped)."""
    done = []
    for path, header, entries, intended, _ in unlocked(directory, tracking_uri):
        run_id = header["run_id"]
        have = known(run_id, {key for key, *_ in entries})
        if have is not None:
            missing = list({(e[0], e[2]): e for e in entries if (e[0], e[2]) not in have}.values())
            if missing:
                send(run_id, missing)
            # a kill with nothing unsent is the heartbeat reaper's business
            ended = bool(missing or intended)
            if ended:
                end(run_id, intended, len(missing))
            done.append(
                Replayed(run_id, path, len(missing), len(entries) - len(missing), intended, ended)
            )
        path.unlink(missing_ok=True)
    return done
