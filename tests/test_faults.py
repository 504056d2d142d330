"""Every way a run or a trial can end, in a real `textclf` process: the exit code, the MLflow run
status, the Optuna trial state, and never a run left RUNNING (kill -9: once the heartbeat watchdog
has noticed).

Faults are injected by a wrapper (INJECT) that replaces the training epoch before the CLI starts, so
the code under test is the shipped one.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest

from conftest import write
from textclf.tracking import liveness, runs, store

INJECT = r"""
import os, sys, time
import torch
import textclf.training.epoch as e
import textclf.training.loop as t
fault, real_epoch, real_ce = os.environ["FAULT"], t.train_epoch, e.F.cross_entropy

def faulty_epoch(*args, **kwargs):
    if fault != "hang-epoch-3" or "epoch 3/" in args[-1]:
        open(os.environ["STARTED"], "a").close()
    if fault == "exception":
        raise RuntimeError("injected failure")
    if fault == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
    if fault == "hang" or (fault == "hang-epoch-3" and "epoch 3/" in args[-1]):
        time.sleep(600)  # the test signals meanwhile
    return real_epoch(*args, **kwargs)

class NanLoss:
    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)
    @staticmethod
    def cross_entropy(*args, **kwargs):
        return real_ce(*args, **kwargs) * float("nan")

t.train_epoch = faulty_epoch
if fault == "nan":
    e.F = NanLoss()
from textclf.cli import main
sys.argv = ["textclf", *sys.argv[1:]]
main()
"""

# fault -> (how the test delivers it, exit code, MLflow status of the (child) run, Optuna trial
# state)
FAULTS = {
    "normal": (None, 0, "FINISHED", "COMPLETE"),
    "exception": (None, 1, "FAILED", "FAIL"),
    "nan": (None, 1, "FAILED", "FAIL"),
    "oom": (None, 1, "FAILED", "FAIL"),
    "ctrl-c": (signal.SIGINT, 130, "KILLED", "FAIL"),
    "sigterm": (signal.SIGTERM, 143, "KILLED", "FAIL"),
}


def launch(tmp_path: Path, fault: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
    """`textclf ARGS` with `fault` injected into training (a signal fault hangs until the signal
    comes)."""
    started = tmp_path / f"started-{args[0]}"
    injected = "hang" if fault == "kill" or FAULTS.get(fault, (None,))[0] is not None else fault
    env = {**os.environ, "FAULT": injected, "STARTED": str(started), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", INJECT, *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, started


def deliver(proc: subprocess.Popen, started: Path, sig) -> tuple[int, str]:
    if sig is not None:
        deadline = time.time() + 120
        while not started.exists():
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def only_run(uri: str, experiment: str, parent: bool | None = None):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    if parent is not None:
        runs = [r for r in runs if ("mlflow.parentRunId" in r.data.tags) != parent]
    assert len(runs) == 1, [(r.info.run_id, r.info.status) for r in runs]
    return runs[0]


@pytest.mark.slow  # 6 train processes and 6 sweep processes: ~2 min on 2 cores
@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_exit_path_of_train_and_of_a_sweep_trial(fault, tmp_path, tiny_overrides):
    sig, code, status, state = FAULTS[fault]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, started = launch(
        tmp_path,
        fault,
        ["train", "--tracking-uri", uri, *[a for o in tiny_overrides for a in ("-o", o)]],
    )
    returncode, err = deliver(proc, started, sig)
    assert returncode == code, err[-3000:]
    train_code = returncode
    run = only_run(uri, tiny_overrides[-1].split("=", 1)[1])
    assert run.info.status == status
    if status == "FAILED":
        assert {
            "exception": "injected failure",
            "nan": "FloatingPointError",
            "oom": "OutOfMemoryError",
        }[fault] in run.data.tags["textclf.error"]
    # the same fault inside a one-trial sweep: trial state, one child run with the matching status
    base = {
        "data": {
            "name": tiny_overrides[1].split("=", 1)[1],
            "label_names": ["neg", "pos"],
            "max_length": 32,
        },
        "model": {"name": tiny_overrides[0].split("=", 1)[1]},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "tracking": {"experiment": "fault-sweep", "log_model": False},
    }
    write(tmp_path, base, "base.yaml")
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"sampler": "grid"},
            "grid": [{"train.learning_rate": 5e-3}],
        },
    )
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc, started = launch(
        tmp_path, fault, ["sweep", str(spec), "--storage", storage, "--tracking-uri", uri]
    )
    returncode, err = deliver(proc, started, sig)
    # a failed trial is a result: the sweep goes on
    assert returncode == (code if sig else 0), err[-3000:]
    [trial] = optuna.load_study(study_name="sweep", storage=storage).trials
    assert trial.state.name == state
    child = only_run(uri, "fault-sweep", parent=False)
    assert child.info.status == status and child.data.tags["trial.number"] == "0"
    parent = only_run(uri, "fault-sweep", parent=True)
    assert parent.info.status == ("KILLED" if sig else "FINISHED")
    print(
        f"MEASURED fault {fault}: train exit {train_code}, run {run.info.status}; "
        f"sweep exit {returncode}, trial {trial.state.name}, child {child.info.status}, "
        f"parent {parent.info.status}"
    )
    if fault == "oom":  # retried once with half the batch, as one child run
        assert child.data.tags.get("textclf.oom_retry", "").startswith("batch 16 x 1 -> 8 x 2")


def test_kill_9_leaves_running_until_the_heartbeat_watchdog_ends_it_failed(
    tmp_path, tiny_overrides
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = tiny_overrides[-1].split("=", 1)[1]
    proc, started = launch(
        tmp_path,
        "kill",
        [
            "train",
            "--tracking-uri",
            uri,
            "-o",
            "tracking.heartbeat_s=1",
            *[a for o in tiny_overrides for a in ("-o", o)],
        ],
    )
    returncode, _ = deliver(proc, started, signal.SIGKILL)
    killed_at = time.time()
    assert returncode == -signal.SIGKILL
    run = only_run(uri, experiment)
    assert run.info.status == "RUNNING"  # what MLflow alone leaves behind
    mlflow.set_tracking_uri(uri)
    assert liveness.reap(experiment) == []  # a fresh heartbeat: not yet judged dead
    deadline = time.time() + 30
    while not liveness.reap(experiment):
        assert time.time() < deadline, "the run was never reaped"
        time.sleep(0.5)
    noticed = time.time() - killed_at
    run = only_run(uri, experiment)
    assert run.info.status == "FAILED" and "no heartbeat" in run.data.tags["textclf.error"]
    assert noticed < 4 * 1 + 3  # stale after 4 heartbeats of 1 s; polled every 0.5 s
    print(
        f"MEASURED train kill -9: RUNNING until reaped FAILED {noticed:.1f} s after the kill "
        "(heartbeat 1 s)"
    )


def test_a_live_run_reaped_by_mistake_still_ends_finished_without_the_error(tmp_path, monkeypatch):
    """A long tracking outage can make a live run look dead to another process; when the run ends
    normally it is FINISHED and the reaper's error tag is gone."""
    from textclf.config import load_config

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    store.connect(mlflow.get_tracking_uri(), "reaped")
    with runs.run(load_config(None, ["tracking.heartbeat_s=1"]).tracking, {}) as active:
        # as seen from a later clock
        assert liveness.reap("reaped", now=time.time() + 100) == [active.run_id]
        assert mlflow.MlflowClient().get_run(active.run_id).info.status == "FAILED"
    run = mlflow.MlflowClient().get_run(active.run_id)
    assert run.info.status == "FINISHED" and "textclf.error" not in run.data.tags


def test_two_processes_reaping_the_same_dead_run_at_once_both_go_on(tmp_path, monkeypatch):
    """Three sweep workers start together after a kill -9 and all reap the dead run: on SQLite the
    second insert of the error tag fails (UNIQUE tags.key, run_uuid; CI saw a worker exit 1 on it).

    The reaper that loses the race must go on, and the run ends FAILED once with the winner's
    reason.
    """
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    store.connect(mlflow.get_tracking_uri(), "race")
    run_id = (
        mlflow.MlflowClient()
        .create_run(mlflow.get_experiment_by_name("race").experiment_id)
        .info.run_id
    )
    real_set_tag = mlflow.MlflowClient.set_tag

    def other_reaper_first(self, rid, key, value, *args, **kwargs):
        if (
            key == "textclf.error"
        ):  # the other process inserted its tag between our status check and ours
            real_set_tag(self, rid, key, "no heartbeat for 9 s: the other reaper", *args, **kwargs)
            raise MlflowException(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: tags.key, tags.run_uuid"
            )
        return real_set_tag(self, rid, key, value, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "set_tag", other_reaper_first)
    assert liveness.end_dead(run_id, "no heartbeat for 8 s: this reaper") is False
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.tags["textclf.error"] == "no heartbeat for 9 s: the other reaper"
    # ended by whichever reaper gets there; ending twice is harmless
    assert run.info.status == "FAILED"


def test_a_run_killed_before_its_heartbeat_thread_beat_is_still_reaped(tmp_path, monkeypatch):
    """CI saw a child run left RUNNING after every worker was killed and one restarted: the kill
    landed between the run's creation and its heartbeat thread's first beat, so the run had no
    heartbeat tags and the reaper left it alone for good.

    A run carries its heartbeat from the moment it exists.
    """
    import threading

    from textclf.config import load_config
    from textclf.tracking import sweep_runs

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    store.connect(mlflow.get_tracking_uri(), "unborn")
    # the thread never beats
    monkeypatch.setattr(runs, "heartbeat", lambda run_id, every_s: threading.Event())
    with runs.run(load_config(None, ["tracking.heartbeat_s=1"]).tracking, {}) as active:
        assert liveness.reap("unborn", now=time.time() + 100) == [active.run_id]
    parent = sweep_runs.start_parent(
        "unborn", "a study", {}, {"textclf.study": "a study"}, heartbeat_s=1
    )
    assert liveness.reap("unborn", now=time.time() + 100) == [parent]  # a sweep's parent likewise


def test_a_trial_failed_for_its_dead_worker_never_keeps_a_finished_child(tmp_path):
    """CI (slow job) after every worker was killed: trial 2's run had ended FINISHED, then the
    worker died before Optuna recorded the trial COMPLETE; the restart failed the trial for its
    stale heartbeat, and the child stayed FINISHED beside a FAIL trial.

    Its child must be FAILED, saying why.
    """
    from textclf.studies.records import end_dead_trials

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    store.connect(mlflow.get_tracking_uri(), "dead-worker")
    client = mlflow.MlflowClient()
    run_id = client.create_run(
        mlflow.get_experiment_by_name("dead-worker").experiment_id
    ).info.run_id
    # training ended; the kill came before the trial was told
    client.set_terminated(run_id, "FINISHED")
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    trial = study.ask()
    trial.set_user_attr("mlflow_run_id", run_id)
    # what fail_stale_trials does at the restart
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert end_dead_trials(study) == 1
    run = client.get_run(run_id)
    assert run.info.status == "FAILED" and "heartbeat" in run.data.tags["textclf.error"]
    assert run.data.tags["trial.state"] == "FAIL"
    assert end_dead_trials(study) == 0  # once
