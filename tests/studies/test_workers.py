"""Several worker processes on one study: a worker killed with kill -9 mid-trial, every worker
killed and one restarted, and eight workers at once on SQLite and on PostgreSQL.

Each worker is a separate
`textclf sweep` process, as on separate machines.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest

from conftest import write
from test_faults import launch

pytestmark = pytest.mark.slow  # real processes, heartbeats and a database server: minutes


def study_spec(
    tmp_path: Path, tiny_model, tiny_data, n_trials: int, epochs: int = 2, heartbeat_s: int = 1
) -> Path:
    """Heartbeats of 1 s let the kill tests notice a dead worker in seconds; 8 workers sharing 2
    cores need the defaults' slack, or a live trial whose heartbeat thread lags looks dead."""
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {"epochs": epochs, "batch_size": 16, "progress": False, "patience": 0},
        "tracking": {"experiment": "workers", "log_model": False, "heartbeat_s": heartbeat_s},
    }
    write(tmp_path, base, "base.yaml")
    return write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {
                "name": "many",
                "sampler": "random",
                "n_trials": n_trials,
                "heartbeat_s": heartbeat_s,
                "retries": 1,
            },
            "space": {"train.learning_rate": {"loguniform": [1e-3, 1e-2]}},
        },
    )


def worker(
    tmp_path: Path, spec: Path, storage: str, uri: str, fault: str = "normal", tag: str = "w"
):
    log = open(tmp_path / f"{tag}.log", "w")  # noqa: SIM115 (the worker process writes it)
    return (
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "textclf",
                "sweep",
                str(spec),
                "--storage",
                storage,
                "--tracking-uri",
                uri,
            ],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if fault == "normal"
        else launch(
            tmp_path, fault, ["sweep", str(spec), "--storage", storage, "--tracking-uri", uri]
        )
    )


def wait_for(condition, timeout: float, what: str, logs: Path | None = None) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:  # the workers' output says why
            shown = (
                "".join(
                    f"\n--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(logs.glob("*.log"))
                )
                if logs
                else ""
            )
            raise AssertionError(f"timed out waiting for {what}{shown}")
        time.sleep(0.2)


def kill_one_of_three(tmp_path: Path, spec: Path, storage: str, uri: str) -> float:
    """Three `textclf sweep` processes on one study; the first killed with kill -9 during its first
    trial, the other two run to the end (exit 0).

    Returns when the kill happened.
    """
    doomed, started = worker(tmp_path, spec, storage, uri, fault="kill", tag="doomed")
    wait_for(started.exists, 120, "the doomed worker's first trial")
    others = [worker(tmp_path, spec, storage, uri, tag=f"w{i}") for i in range(2)]
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate()
    killed_at = time.time()
    for i, proc in enumerate(others):
        assert proc.wait(timeout=600) == 0, (tmp_path / f"w{i}.log").read_text()[-3000:]
    return killed_at


def check_study(storage: str, uri: str, target: int) -> optuna.Study:
    """The target number of completed trials, unique numbers, one FINISHED child per completed
    trial, nothing RUNNING anywhere."""
    study = optuna.load_study(study_name="many", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") >= target and "RUNNING" not in states, states
    assert len({t.number for t in study.trials}) == len(study.trials)
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["workers"], output_format="list")
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    finished = sorted(
        int(r.data.tags["trial.number"]) for r in children if r.info.status == "FINISHED"
    )
    assert finished == sorted(t.number for t in study.trials if t.state.name == "COMPLETE")
    # one parent for all workers
    assert len({r.data.tags["mlflow.parentRunId"] for r in children}) == 1
    return study


def test_a_worker_killed_mid_trial_is_failed_by_heartbeat_and_retried(
    tmp_path, tiny_model, tiny_data
):
    spec = study_spec(tmp_path, tiny_model, tiny_data, n_trials=8)
    storage, uri = f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed_at = kill_one_of_three(tmp_path, spec, storage, uri)
    study = check_study(storage, uri, target=8)
    [dead] = [t for t in study.trials if t.state.name == "FAIL"]
    retried = [
        t
        for t in study.trials
        if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == dead.number
    ]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == dead.params  # the same configuration, run again
    noticed = dead.datetime_complete.timestamp() - killed_at
    assert noticed < 4 * 1 + 30  # stale after 4 heartbeats of 1 s, noticed at the next trial start
    print(
        f"MEASURED worker kill -9: trial {dead.number} FAIL {noticed:.1f} s after the kill, "
        f"retried as trial {retried[0].number} (COMPLETE); {len(study.trials)} trials"
    )
    mlflow.set_tracking_uri(uri)
    child = mlflow.search_runs(
        experiment_names=["workers"],
        output_format="list",
        filter_string=f"tags.`trial.number` = '{dead.number}'",
    )[0]
    assert child.info.status == "FAILED" and "heartbeat" in child.data.tags["textclf.error"]


def test_killing_every_worker_then_restarting_one_keeps_every_completed_trial(
    tmp_path, tiny_model, tiny_data
):
    spec = study_spec(tmp_path, tiny_model, tiny_data, n_trials=6)
    storage, uri = f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"

    def trials(state: str):
        try:
            return [
                t
                for t in optuna.load_study(study_name="many", storage=storage).trials
                if t.state.name == state
            ]
        except KeyError:  # the study does not exist yet
            return []

    def completed():
        return trials("COMPLETE")

    # the second worker starts once the first has created the stores: fresh SQLite stores opened by
    # two processes at once race in their migrations (shared/NOTES.md)
    procs = [worker(tmp_path, spec, storage, uri, tag="w0")]
    wait_for(lambda: trials("RUNNING"), 120, "the first worker's first trial", tmp_path)
    procs.append(worker(tmp_path, spec, storage, uri, tag="w1"))
    # kill while trials run, so that unfinished work is killed along with the workers
    wait_for(
        lambda: len(completed()) >= 2 and trials("RUNNING"),
        300,
        "two completed trials and a running one",
        tmp_path,
    )
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = {t.number: t.value for t in completed()}
    time.sleep(5)  # the killed trials' heartbeats go stale (4 x 1 s)
    restarted = worker(tmp_path, spec, storage, uri, tag="restart")
    assert restarted.wait(timeout=600) == 0, (tmp_path / "restart.log").read_text()[-3000:]
    study = check_study(storage, uri, target=6)
    after = {t.number: t.value for t in study.trials if t.state.name == "COMPLETE"}
    assert [t.state.name for t in study.trials].count(
        "FAIL"
    ) >= 1  # the killed trials, failed by heartbeat
    assert all(after[n] == v for n, v in before.items())  # nothing completed was lost or rerun
    print(
        f"MEASURED kill all workers: {len(before)} completed trials before, all intact after the "
        f"restart; {len(after)} completed, "
        f"{[t.state.name for t in study.trials].count('FAIL')} failed (the killed ones)"
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_eight_workers_on_one_study(backend, tmp_path, tiny_model, tiny_data, request):
    """`textclf sweep --workers 8`: 16 trials, unique numbers, one FINISHED child per completed
    trial, nothing RUNNING, no "database is locked".

    PostgreSQL: Optuna's storage and a real `mlflow server`
    over a PostgreSQL backend store with a local artifact root.
    """
    from textclf.ops import server

    spec = study_spec(tmp_path, tiny_model, tiny_data, n_trials=16, epochs=1, heartbeat_s=30)
    if backend == "sqlite":
        storage, uri, stop = (
            f"sqlite:///{tmp_path / 'optuna.db'}",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            None,
        )
    else:
        database = request.getfixturevalue("postgres")
        storage = database("optuna")
        stop, uri = server.start(
            database("mlflow"), tmp_path / "artifacts", tmp_path / "server.log", workers=2
        )
    try:
        start = time.time()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "textclf",
                "sweep",
                str(spec),
                "--workers",
                "8",
                "--storage",
                storage,
                "--tracking-uri",
                uri,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        seconds = time.time() - start
        (tmp_path / "sweep.err").write_text(done.stderr)
        problems = [line for line in done.stderr.splitlines() if "Error" in line or "rror:" in line]
        assert done.returncode == 0, "\n".join(problems[-40:])
        assert "database is locked" not in done.stderr
        study = check_study(storage, uri, target=16)
    finally:
        if stop is not None:
            server.stop(stop)
    assert [t.state.name for t in study.trials].count("FAIL") == 0
    print(f"MEASURED 8 workers on {backend}: {len(study.trials)} trials in {seconds:.0f} s")


def test_a_grid_runs_every_point_once_under_three_workers_a_kill_and_a_rerun(
    tmp_path, tiny_model, tiny_data
):
    """Six grid points, three `textclf sweep` processes, the first killed with kill -9 mid-trial:
    its point is enqueued again when its heartbeat goes stale and run by a live worker; idle workers
    wait instead of rerunning running points; a rerun of the command finds nothing to do."""
    rates = [5e-3, 4e-3, 3e-3, 2e-3, 1e-3, 6e-3]
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {"epochs": 2, "batch_size": 16, "progress": False},
        "tracking": {"experiment": "workers", "log_model": False, "heartbeat_s": 1},
    }
    write(tmp_path, base, "base.yaml")
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"name": "many", "sampler": "grid", "heartbeat_s": 1},
            "space": {"train.learning_rate": {"categorical": rates}},
        },
    )
    storage, uri = f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    kill_one_of_three(tmp_path, spec, storage, uri)
    study = check_study(storage, uri, target=6)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    # each point exactly once
    assert sorted(t.params["train.learning_rate"] for t in done) == sorted(rates)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    [dead] = [t for t in failed if "duplicate_of" not in t.user_attrs]  # the killed worker's trial
    assert "error" not in dead.user_attrs and dead.params["train.learning_rate"] in rates
    # on SQLite two workers may both fail the stale trial and enqueue its point twice: the second
    # copy ran nothing (no MLflow run, checked by check_study) and is marked
    assert all(t.user_attrs.get("duplicate_of") is not None for t in failed if t is not dead)
    rerun = worker(tmp_path, spec, storage, uri, tag="rerun")
    assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    assert len(optuna.load_study(study_name="many", storage=storage).trials) == len(study.trials)
    print(
        f"MEASURED grid with a kill: 6 points COMPLETE once each, {len(study.trials)} trials "
        "(the killed one FAIL), rerun added none"
    )
