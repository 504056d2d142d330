"""Metrics held locally while the tracking server is unreachable, then replayed, each (key, step)
exactly once.

Training never waits on the server: each epoch's metrics join the spool and one fast attempt (no
retries, a short timeout: runs.py) sends everything pending. When an attempt fails the server
may still have stored the batch (a timeout after the write), so before the next send the spool asks
which (key, step) pairs the run already has and drops those: nothing is lost and nothing is logged
twice. At the end of the run `drain` keeps trying, up to a deadline, before the final results are
logged. With a journal (journal.py) every value is on disk before it is sent, until the server
confirmed it: a process killed during an outage loses nothing (`textclf sync` replays it). No MLflow
here: runs.py passes in how to send and how to ask.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from textclf.errors import first_line
from textclf.tracking.journal import Journal

log = logging.getLogger(__name__)

Entry = tuple[str, float, int, int]  # (key, value, step, timestamp in ms)
Send = Callable[[list[Entry]], None]  # raises when the server did not confirm
# (key, step) pairs the run already has; raises likewise
Known = Callable[[set[str]], set[tuple[str, int]]]


@dataclass
class Spool:
    send: Send
    known: Known
    pending: list[Entry] = field(default_factory=list)
    uncertain: bool = False  # a send failed: the server may hold part of `pending`
    longest_wait_s: float = 0.0  # the longest a training-time flush blocked
    failures: int = 0
    journal: Journal | None = None

    def add(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self._hold([(key, float(value), step, now) for key, value in metrics.items()])

    def add_steps(self, key: str, values: list[float]) -> None:
        """One value per step 1, 2, ... (a per-step series), in one journal write."""
        now = int(time.time() * 1000)
        self._hold([(key, float(value), step, now) for step, value in enumerate(values, start=1)])

    def _hold(self, entries: list[Entry]) -> None:
        if self.journal:  # on disk first: a kill during the send loses nothing
            self.journal.append(entries)
        self.pending += entries

    def flush(self) -> bool:
        """One attempt while training (timed: `longest_wait_s`); True when nothing is pending."""
        start = time.perf_counter()
        done = self._attempt()
        self.longest_wait_s = max(self.longest_wait_s, time.perf_counter() - start)
        return done

    def _attempt(self, patient: bool = False) -> bool:
        """Ask what the server already has (after a failure), then send the rest. While training,
        a slow answer to the question defers the send to the next epoch, so one call costs about
        one timeout."""
        start, had = time.perf_counter(), bool(self.pending)
        try:
            if self.pending and self.uncertain:
                have = self.known({key for key, *_ in self.pending})
                self.pending = [e for e in self.pending if (e[0], e[2]) not in have]
                self.uncertain = False
                if not patient and time.perf_counter() - start > 0.3 and self.pending:
                    return False
            if self.pending:
                self.send(self.pending)
                self.pending = []
            if had and self.journal:  # the server has every value the journal holds
                self.journal.confirmed()
        # the server is down, slow or refusing: keep everything, try again later
        except Exception as e:
            self.uncertain, self.failures = True, self.failures + 1
            log.warning(
                "tracking server unreachable (%s); %d metric values held locally",
                first_line(e),
                len(self.pending),
            )
        return not self.pending

    def drain(self, deadline_s: float, every_s: float = 5.0) -> None:
        """Keep flushing until everything is sent; TimeoutError after `deadline_s`."""
        end = time.monotonic() + deadline_s
        while not self._attempt(patient=True):
            if time.monotonic() >= end:
                raise TimeoutError(
                    f"tracking server still unreachable after {deadline_s:.0f} s; "
                    f"{len(self.pending)} metric values not logged"
                )
            time.sleep(min(every_s, max(end - time.monotonic(), 0)))
