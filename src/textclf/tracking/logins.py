"""Logins on a shared tracking server, the client side: MLflow's own MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD, checked before any run exists, so that a missing or wrong login (401) or a
read-only permission (403) is one line, exit 2. Secrets travel only in the environment, never in
argv, config, params, tags or logs. The server side is ops/auth.py."""

from __future__ import annotations

import os

LOGIN_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def login_problem(status: int, origin: str) -> str | None:
    """One line for a 401/403 from the tracking server, naming the variables to fix (else None)."""
    user = os.environ.get(LOGIN_ENV[0])
    if status == 401 and not user:
        return (
            f"{origin}: the tracking server requires a login (401); set {LOGIN_ENV[0]} and "
            f"{LOGIN_ENV[1]} in the environment"
        )
    if status == 401:
        return (
            f"{origin}: the tracking server rejected the login of user {user!r} (401); check "
            f"{LOGIN_ENV[0]} and {LOGIN_ENV[1]}"
        )
    if status == 403:
        return (
            f"{origin}: user {user!r} may not do this (403 permission denied); ask the "
            "experiment's owner or an admin for EDIT on it, or log to an experiment of your "
            "own (tracking.experiment)"
        )
    return None
