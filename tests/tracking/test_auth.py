"""A shared tracking server that lets no one in unauthenticated: `textclf server --auth` (MLflow's
basic-auth app) against real clients on 127.0.0.1.

Anonymous and wrong logins get 401, a read-only user 403, each one line and exit 2 before any run
exists; an authorised user trains and runs a 2-worker sweep, and the password appears in no param,
tag, config.yaml, report, output line or worker argv.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import mlflow.server
import pytest
import requests

from textclf.ops import auth, server

ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD = (
    "admin-Pass-0123456",
    "alice-Pass-98765x",
    "bob-Pass-5432109",
)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """An auth server over SQLite; users alice (logs to her own experiments) and bob (READ on
    'shared')."""
    home = tmp_path_factory.mktemp("auth-server")
    backend = f"sqlite:///{home / 'mlflow.db'}"
    saved = dict(os.environ)
    os.environ[auth.PASSWORD_ENV] = ADMIN_PASSWORD
    try:
        env, database, first = auth.server_environment(backend, auth.admin_password(None), "READ")
        assert first and database == f"sqlite:///{home / 'basic_auth.db'}"
        proc, url = server.start(backend, home / "artifacts", home / "server.log", auth_env=env)
        os.environ.update(
            {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
        )
        users = mlflow.server.get_app_client("basic-auth", tracking_uri=url)
        users.create_user("alice", ALICE_PASSWORD)
        users.create_user("bob", BOB_PASSWORD)
        shared = mlflow.MlflowClient(url).create_experiment("shared")
        users.grant_user_permission("bob", "experiment", shared, "READ")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield {"url": url, "backend": backend, "home": home}
    finally:
        server.stop(proc)


def login(monkeypatch, user: str | None, password: str | None) -> None:
    for variable, value in zip(auth.LOGIN_ENV, (user, password), strict=False):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)


def runs_in(backend: str, experiment: str) -> list:
    found = mlflow.MlflowClient(backend).get_experiment_by_name(experiment)
    return [] if found is None else mlflow.MlflowClient(backend).search_runs([found.experiment_id])


def train_args(auth_server, tiny_overrides, experiment):
    return [
        "train",
        "--tracking-uri",
        auth_server["url"],
        *[a for o in tiny_overrides for a in ("-o", o)],
        "-o",
        "train.epochs=1",
        "-o",
        "tracking.log_model=false",
        "-o",
        f"tracking.experiment={experiment}",
        "-o",
        "tracking.outage_wait_s=0",
    ]


def test_anonymous_and_wrong_logins_are_refused_before_any_run(
    auth_server, cli, monkeypatch, tiny_overrides
):
    assert (
        requests.get(
            f"{auth_server['url']}/api/2.0/mlflow/experiments/search?max_results=1"
        ).status_code
        == 401
    )
    # health stays open for probes
    assert requests.get(f"{auth_server['url']}/health").status_code == 200
    login(monkeypatch, None, None)
    code, _, err = cli(*train_args(auth_server, tiny_overrides, "anon"))
    assert code == 2 and err.strip() == (
        f"--tracking-uri {auth_server['url']}: the tracking server requires a login (401); set "
        f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment"
    )
    login(monkeypatch, "alice", "not-her-password")
    code, _, err = cli(*train_args(auth_server, tiny_overrides, "anon"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "rejected the login of user 'alice' (401); check MLFLOW_TRACKING_USERNAME" in err
    assert runs_in(auth_server["backend"], "anon") == []
    assert mlflow.MlflowClient(auth_server["backend"]).get_experiment_by_name("anon") is None


def test_a_read_only_user_reads_but_cannot_log(auth_server, cli, monkeypatch, tiny_overrides):
    login(monkeypatch, "bob", BOB_PASSWORD)
    client = mlflow.MlflowClient(auth_server["url"])
    assert client.get_experiment_by_name("shared").name == "shared"  # READ works
    code, _, err = cli(*train_args(auth_server, tiny_overrides, "shared"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "experiment 'shared': user 'bob' may not do this (403 permission denied)" in err
    assert runs_in(auth_server["backend"], "shared") == []  # no half-created run


def test_an_authorised_user_trains_and_sweeps_and_the_password_leaks_nowhere(
    auth_server, cli, monkeypatch, tiny_overrides, tiny_sweep, tmp_path
):
    login(monkeypatch, "alice", ALICE_PASSWORD)
    code, out, err = cli(*train_args(auth_server, tiny_overrides, "alice-train"))
    assert code == 0, err
    spawned = []
    real_popen = subprocess.Popen

    def recording_popen(argv, *args, **kwargs):
        spawned.append((list(argv), kwargs.get("env", {})))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr("textclf.studies.workers.subprocess.Popen", recording_popen)
    code, sweep_out, sweep_err = cli(
        "sweep",
        tiny_sweep,
        "--workers",
        "2",
        "--tracking-uri",
        auth_server["url"],
        "--storage",
        f"sqlite:///{tmp_path / 'optuna.db'}",
    )
    assert code == 0, sweep_err[-3000:]
    assert len(spawned) == 2 and all(
        env.get("MLFLOW_TRACKING_PASSWORD") == ALICE_PASSWORD for _, env in spawned
    )
    code, report_out, err = cli(
        "report", "sweep", "--tracking-uri", auth_server["url"], "--output", tmp_path / "report"
    )
    assert code == 0, err
    runs = runs_in(auth_server["backend"], "alice-train") + runs_in(
        auth_server["backend"], "tiny-sweep"
    )
    # 1 train + parent + 3 trials
    assert len(runs) == 5 and {r.info.status for r in runs} >= {"FINISHED"}
    client = mlflow.MlflowClient(auth_server["url"])  # as alice: artifacts come through the server
    places = {
        "argv": " ".join(a for argv, _ in spawned for a in argv),
        "output": out + sweep_out + sweep_err + report_out,
        "report": "".join(
            p.read_text(errors="replace")
            for p in (tmp_path / "report").rglob("*")
            if p.suffix in (".md", ".csv", ".html")
        ),
    }
    for run in runs:
        places[run.info.run_id] = repr(run.data.params) + repr(run.data.tags)
        if any(a.path == "config.yaml" for a in client.list_artifacts(run.info.run_id)):
            path = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
            places[run.info.run_id] += Path(path).read_text()
    assert (
        places["report"]
        and sum("config.yaml" in text or "train." in text for text in places.values()) > 3
    )
    assert not [
        where for where, text in places.items() if ALICE_PASSWORD in text or ADMIN_PASSWORD in text
    ]


def test_the_server_refuses_exposure_without_logins_and_weak_admin_passwords(
    cli, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(auth.PASSWORD_ENV, raising=False)
    code, _, err = cli("server", "--host", "0.0.0.0")
    assert (
        code == 2
        and "--host 0.0.0.0: refusing to serve" in err
        and "add --auth, or --insecure-no-auth" in err
    )
    assert [
        auth.is_loopback(h)
        for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "0.0.0.0", "10.0.0.5")
    ] == [True, True, True, True, False, False]
    code, _, err = cli("server", "--auth")
    assert (
        code == 2
        and "give its password in $TEXTCLF_SERVER_ADMIN_PASSWORD or --admin-password-file" in err
    )
    secret = tmp_path / "admin-password"
    secret.write_text(ADMIN_PASSWORD)
    secret.chmod(0o644)
    code, _, err = cli("server", "--auth", "--admin-password-file", secret)
    assert (
        code == 2
        and err.strip()
        == f"--admin-password-file {secret}: readable by others (mode 644); chmod 600 {secret}"
    )
    monkeypatch.setenv(auth.PASSWORD_ENV, "short")
    code, _, err = cli("server", "--auth")
    assert code == 2 and "at least 12 characters" in err
    monkeypatch.setenv(auth.PASSWORD_ENV, "password1234")
    code, _, err = cli("server", "--auth")
    assert code == 2 and "old MLflow versions shipped" in err
    assert not (tmp_path / "basic_auth.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_the_admin_password_reaches_mlflow_only_through_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(auth.PASSWORD_ENV, ADMIN_PASSWORD)
    backend = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env, _, _ = auth.server_environment(backend, auth.admin_password(None), "READ")
    argv = server.command(backend, tmp_path / "art", auth=True)
    assert "--app-name" in argv and ADMIN_PASSWORD not in " ".join(argv)
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == ADMIN_PASSWORD
    assert ADMIN_PASSWORD not in (tmp_path / "basic_auth.ini").read_text()
    assert oct((tmp_path / ".textclf-server-secret").stat().st_mode & 0o777) == "0o600"
    assert auth.PASSWORD_ENV not in server.environment(env)  # one copy, under MLflow's own name
    # a server without --auth gets none
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" not in server.environment(None)
