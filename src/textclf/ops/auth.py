"""Logins on a shared tracking server, the server side, with MLflow's own mechanisms: MLflow's
basic-auth app (`mlflow server --app-name basic-auth`: users, per-experiment READ/EDIT/MANAGE, the
admin user). The client side (MLflow's MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, a
refused login as one line) is tracking/logins.py.

Secrets travel only in environment variables and 0600 files: never in argv, the config, params,
tags or logs.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import secrets
import stat
from pathlib import Path

from textclf.errors import InputError
from textclf.tracking.logins import LOGIN_ENV

PASSWORD_ENV = "TEXTCLF_SERVER_ADMIN_PASSWORD"
ADMIN = "admin"  # MLflow's default admin user name
# the admin password MLflow versions before 3.x shipped in basic_auth.ini: public, so never accepted
_OLD_DEFAULT = "password1234"


def check_binding(host: str, auth: bool, insecure: bool) -> None:
    """Beyond loopback, a server without logins lets anyone who reaches the port read, change and
    delete every run: it is refused unless --auth, or an explicit --insecure-no-auth behind a proxy
    that authenticates."""
    if auth or insecure or is_loopback(host):
        return
    raise InputError(
        [
            f"--host {host}: refusing to serve the tracking server beyond this machine "
            "without logins (anyone who reaches the port could read, change and delete "
            "every run); add --auth, or --insecure-no-auth if a proxy in front of it "
            "authenticates"
        ]
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_password(password_file: str | None) -> str | None:
    """From --admin-password-file (only its owner may read it) or $TEXTCLF_SERVER_ADMIN_PASSWORD;
    None if neither is given (fine once the admin user exists)."""
    if password_file:
        path = Path(password_file)
        if not path.is_file():
            raise InputError([f"--admin-password-file {path}: no such file"])
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise InputError(
                [
                    f"--admin-password-file {path}: readable by others (mode "
                    f"{stat.S_IMODE(path.stat().st_mode):o}); chmod 600 {path}"
                ]
            )
        password = path.read_text(encoding="utf-8").strip()
        origin = f"--admin-password-file {path}"
    else:
        given, origin = os.environ.get(PASSWORD_ENV), f"${PASSWORD_ENV}"
        if given is None:
            return None
        password = given
    if len(password) < 12:
        raise InputError(
            [f"{origin}: the admin password must have at least 12 characters (MLflow's rule)"]
        )
    if password == _OLD_DEFAULT:
        raise InputError(
            [
                f"{origin}: that is the admin password old MLflow versions shipped "
                "(public); choose another"
            ]
        )
    return password


def server_environment(
    backend_uri: str, password: str | None, default_permission: str
) -> tuple[dict, str, bool]:
    """The environment that switches MLflow's basic-auth app on, its permission database (beside the
    backend store), and whether this is the first start (the admin user does not exist yet)."""
    home, database = state_dir(backend_uri), auth_database(backend_uri)
    first = (
        database.startswith("sqlite:///") and not Path(database.removeprefix("sqlite:///")).exists()
    )
    if first and password is None:
        raise InputError(
            [
                f"--auth: the first start creates the admin user '{ADMIN}'; give its "
                f"password in ${PASSWORD_ENV} or --admin-password-file (a mode-600 "
                "file), never on the command line"
            ]
        )
    home.mkdir(parents=True, exist_ok=True)
    # no secret in it: MLflow reads the password from its environment
    ini = configparser.ConfigParser()
    ini["mlflow"] = {
        "default_permission": default_permission,
        "database_uri": database,
        "admin_username": ADMIN,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    }
    config_path = home / "basic_auth.ini"
    with open(config_path, "w") as f:
        ini.write(f)
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config_path),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
        or _secret_key(home),
    }
    if password is not None:
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    return env, database, first


def state_dir(backend_uri: str) -> Path:
    """Beside a SQLite backend store; else ./.textclf-server."""
    if backend_uri.startswith("sqlite:///"):
        return Path(backend_uri.removeprefix("sqlite:///")).resolve().parent
    return Path(".textclf-server").resolve()


def auth_database(backend_uri: str) -> str:
    """SQLite: basic_auth.db beside mlflow.db. Other databases: the same database (MLflow's auth
    tables keep their own migration table, alembic_version_auth)."""
    if backend_uri.startswith("sqlite:///"):
        return f"sqlite:///{state_dir(backend_uri) / 'basic_auth.db'}"
    return backend_uri


def _secret_key(home: Path) -> str:
    """The key MLflow signs its CSRF tokens with, made once and kept in a mode-600 file."""
    path = home / ".textclf-server-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def how_to_add_users(url: str) -> str:
    user, password = LOGIN_ENV
    client = f"c = s.get_app_client('basic-auth', tracking_uri='{url}')"
    add_alice = "c.create_user('alice', input('password for alice: '))"
    return "\n".join(
        [
            f"textclf server: logins required (MLflow basic auth); admin user '{ADMIN}' created. "
            "Add users as admin:",
            f"  export {user}={ADMIN} {password}=<admin password>",
            f'  python -c "import mlflow.server as s; {client}; {add_alice}"',
            "  then c.create_experiment_permission(<experiment id>, 'alice', 'EDIT') to let alice "
            "log to an experiment",
            f"  (users may READ every experiment and create their own); clients set {user} and "
            f"{password}",
        ]
    )
