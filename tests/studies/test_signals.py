"""One Ctrl-C (or SIGTERM) always ends a sweep, wherever it lands: during tokenization, inside a
trial, inside a finalizer run by the garbage collector between trials (where Python swallows
KeyboardInterrupt), and during the final report.

Real `textclf sweep` processes; the signal is sent once the process is held at the chosen point by a
wrapper that patches nothing but a pause in.
"""

import os
import signal
import subprocess
import sys
import time

import mlflow
import optuna
import pytest

from conftest import write

pytestmark = pytest.mark.slow  # real processes: about 15 s each

HOLD = r"""
import importlib, os, sys, time
hold, started = os.environ["HOLD_AT"], os.environ["STARTED"]

def pause(seconds=60):
    open(started, "a").close()
    time.sleep(seconds)

def pause_before(module, name):  # module.name pauses first, then does its work
    owner = importlib.import_module(module)
    real = getattr(owner, name)
    def paused(*args, **kwargs):
        pause()
        return real(*args, **kwargs)
    setattr(owner, name, paused)

if hold in ("tokenize", "trial", "report"):
    pause_before(*{"tokenize": ("textclf.data.tokens", "tokenize"),
                   "trial": ("textclf.training.loop", "train_epoch"),
                   "report": ("textclf.reporting.build", "build_report")}[hold])
# a finalizer run by the collection after the first trial (Optuna's gc_after_trial)
elif hold == "gc":
    import textclf.studies.sweep as driver
    calls, real_objective = [], driver.objective
    class Cyclic:
        def __init__(self):
            self.me = self  # only the cycle collector frees it
        def __del__(self):
            # the KeyboardInterrupt raised here is printed as "Exception ignored" and swallowed
            pause(5)
    def objective(*args, **kwargs):
        try:
            return real_objective(*args, **kwargs)
        finally:
            calls.append(1)
            if len(calls) == 1:
                Cyclic()
    driver.objective = objective

from textclf.cli import main
sys.argv = ["textclf", *sys.argv[1:]]
main()
"""


@pytest.fixture
def two_trial_sweep(tmp_path, tiny_model, tiny_data):
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "tracking": {"experiment": "signals", "log_model": False},
    }
    write(tmp_path, base, "base.yaml")
    return write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"name": "signals", "sampler": "grid"},
            "grid": [{"train.learning_rate": 5e-3}, {"train.learning_rate": 4e-3}],
        },
    )


@pytest.mark.parametrize(
    "hold, sig, code",
    [
        ("tokenize", signal.SIGINT, 130),
        ("trial", signal.SIGINT, 130),
        ("gc", signal.SIGINT, 130),
        ("report", signal.SIGINT, 130),
        ("trial", signal.SIGTERM, 143),
        ("gc", signal.SIGTERM, 143),
    ],
)
def test_one_signal_ends_the_sweep_wherever_it_arrives(tmp_path, two_trial_sweep, hold, sig, code):
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, "sweep", str(two_trial_sweep)],
        cwd=tmp_path,
        env={**os.environ, "HOLD_AT": hold, "STARTED": str(started)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not started.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.1)
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-3000:]
    print(
        f"MEASURED {signal.Signals(sig).name} at {hold}: exit {proc.returncode} "
        f"{time.time() - sent:.1f} s after"
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["signals"], output_format="list")
    [parent] = [r for r in runs if r.data.tags.get("textclf.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.info.status == "KILLED" and not [r for r in runs if r.info.status == "RUNNING"]
    study = optuna.load_study(study_name="signals", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    # queued grid points stay queued
    states = [t.state.name for t in study.trials if t.state.name != "WAITING"]
    assert "RUNNING" not in states
    if hold == "trial":  # the child of the interrupted trial ends KILLED, and no other trial starts
        assert [c.info.status for c in children] == ["KILLED"] and states == ["FAIL"]
    if hold == "gc":  # the first trial completed; the second never started
        assert [c.info.status for c in children] == ["FINISHED"] and states == ["COMPLETE"]
    if hold == "tokenize":  # interrupted before its run existed
        assert children == [] and states == ["FAIL"]
    if hold == "report":
        assert states == ["COMPLETE", "COMPLETE"]
