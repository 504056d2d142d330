"""A local `mlflow server` for textclf runs: bound to 127.0.0.1 unless told otherwise, over a SQLite or
PostgreSQL backend store, with a local artifact root served through the server (`--serve-artifacts`).

The server forks worker processes, so it runs in its own process group and is stopped
as a group; a plain terminate would leave consumers behind.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def serve(backend_uri: str, artifacts: str, host: str, port: int, workers: int) -> None:
    """Become the server process (`textclf server`, in the foreground)."""
    if host != "127.0.0.1":
        log.warning("binding %s: the tracking server has no authentication; anyone who can reach it can "
                    "read and change runs", host)
    os.execve(sys.executable, command(backend_uri, Path(artifacts), host, port, workers), environment())


def environment() -> dict[str, str]:
    """MLflow's GenAI job runner (several huey consumer processes) is off: textclf runs do not use it, and
    on a small machine it slows the server's start several-fold. Set the variable to true to keep it."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def command(backend_uri: str, artifacts: Path, host: str = "127.0.0.1", port: int = 5000,
            workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--workers",
            str(workers), "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts),
            "--serve-artifacts"]


def start(backend_uri: str, artifacts: Path, log_path: Path, host: str = "127.0.0.1", port: int | None = None,
          workers: int = 1) -> tuple[subprocess.Popen, str]:
    """Start the server and wait (up to 2 minutes) until /health answers; returns (process, URL)."""
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    with open(log_path, "a") as log:
        proc = subprocess.Popen(command(backend_uri, artifacts, host, port, workers), stdout=log, stderr=log,
                                env=environment(), start_new_session=True)
    deadline = time.time() + 120
    while not healthy(url):
        if proc.poll() is not None or time.time() > deadline:
            stop(proc)
            raise RuntimeError(f"mlflow server did not start; see {log_path}")
        time.sleep(0.3)
    return proc, url


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def running(backend_uri: str, artifacts: Path, log_path: Path, host: str = "127.0.0.1",
            port: int | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    proc, url = start(backend_uri, artifacts, log_path, host, port)
    try:
        yield proc, url
    finally:
        stop(proc)
