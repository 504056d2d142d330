"""A local `mlflow server` for textclf runs: bound to 127.0.0.1 unless told otherwise (and then only
with logins: auth.py), over a SQLite or PostgreSQL backend store, with a local artifact root served
through the server (`--serve-artifacts`).

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


def serve(
    backend_uri: str, artifacts: str, host: str, port: int, workers: int, auth_env: dict | None
) -> None:
    """Become the server process (`textclf server`, in the foreground); `auth_env`
    (auth.server_environment) switches MLflow's basic-auth app on. Files the server creates (stores,
    the user database) are its own."""
    if auth_env is not None:
        os.umask(0o077)
    os.execve(
        sys.executable,
        command(backend_uri, Path(artifacts), host, port, workers, auth_env is not None),
        environment(auth_env),
    )


def environment(auth_env: dict | None = None) -> dict[str, str]:
    """MLflow's GenAI job runner (several huey consumer processes) is off: textclf runs do not use
    it, and on a small machine it slows the server's start several-fold. Set the variable to true to
    keep it. A server without --auth must not inherit an admin password meant for another."""
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ, **(auth_env or {})}
    if auth_env is None:
        env.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)
    # MLflow reads its own variable; one copy is enough
    env.pop("TEXTCLF_SERVER_ADMIN_PASSWORD", None)
    return env


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def command(
    backend_uri: str,
    artifacts: Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    auth: bool = False,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(artifacts),
        "--serve-artifacts",
        *(["--app-name", "basic-auth"] if auth else []),
    ]


def start(
    backend_uri: str,
    artifacts: Path,
    log_path: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    auth_env: dict | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start the server and wait (up to 2 minutes) until /health answers; returns (process, URL)."""
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            command(backend_uri, artifacts, host, port, workers, auth_env is not None),
            stdout=log,
            stderr=log,
            env=environment(auth_env),
            start_new_session=True,
        )
    deadline = time.time() + 120
    try:
        while not healthy(url):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlflow server did not start; see {log_path}")
            time.sleep(0.3)
    except BaseException:  # Ctrl-C while it starts included: no server left behind
        stop(proc)
        raise
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
def running(
    backend_uri: str,
    artifacts: Path,
    log_path: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    auth_env: dict | None = None,
) -> Iterator[tuple[subprocess.Popen, str]]:
    proc, url = start(backend_uri, artifacts, log_path, host, port, auth_env=auth_env)
    try:
        yield proc, url
    finally:
        stop(proc)
