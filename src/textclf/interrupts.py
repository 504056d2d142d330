"""One Ctrl-C (or SIGTERM) always ends textclf, whenever it arrives.

Python raises KeyboardInterrupt wherever the main thread happens to be. If that is a finalizer or a
weakref callback run by the garbage collector (after every trial, for instance), the exception is
printed as "Exception ignored in: ..." and swallowed, and a sweep would go on training. So the
handler also remembers the signal, and `check()` raises it again at safe points: every training step
and evaluation batch, the start and end of every trial, after each garbage collection.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
from typing import NoReturn

from textclf.errors import Terminated

_pending: type[KeyboardInterrupt] | None = None


def install() -> None:
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


def _handle(signum, frame) -> None:
    global _pending
    _pending = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    raise _pending()


def check() -> None:
    """Raise the interrupt that arrived, if one did (Python may have swallowed it where it came)."""
    if _pending is not None:
        raise _pending()


def pending() -> type[KeyboardInterrupt] | None:
    return _pending


def leave(code: int) -> NoReturn:
    """End the process now with `code`, after a Ctrl-C or SIGTERM has ended the command: the exit
    handlers run (MLflow's, temporary directories') and the streams are flushed, but Python's
    teardown of every loaded module, a second or more with torch and mlflow loaded, is skipped."""
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
