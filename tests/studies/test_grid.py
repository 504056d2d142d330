"""Grid sweeps: every grid point ends COMPLETE (or FAIL by its own error) exactly once, whatever was
interrupted, killed or rerun; idle workers never rerun a point that is still running."""

from __future__ import annotations

import optuna

import textclf.studies.objective
from conftest import write

LEARNING_RATES = [5e-3, 4e-3, 3e-3]


def grid_spec(tmp_path, tiny_model, tiny_data, heartbeat_s=30, experiment="grid"):
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "tracking": {"experiment": experiment, "log_model": False, "heartbeat_s": heartbeat_s},
    }
    write(tmp_path, base, "base.yaml")
    return write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"name": "grid", "sampler": "grid", "heartbeat_s": heartbeat_s},
            "space": {"train.learning_rate": {"categorical": LEARNING_RATES}},
        },
    )


def points_done(storage: str) -> list[float]:
    """The learning rate of every trial that counts as done (COMPLETE, PRUNED, or FAIL by its own
    error)."""
    study = optuna.load_study(study_name="grid", storage=storage)
    return sorted(
        t.params["train.learning_rate"]
        for t in study.trials
        if t.state.name in ("COMPLETE", "PRUNED") or "error" in t.user_attrs
    )


def test_an_interrupted_grid_point_is_run_on_the_rerun_and_no_point_twice(
    cli, tmp_path, tiny_model, tiny_data, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    spec = grid_spec(tmp_path, tiny_model, tiny_data)
    real_train_run, calls = textclf.studies.objective.train_run, []

    def interrupted_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second trial
        return real_train_run(*args, **kwargs)

    monkeypatch.setattr(textclf.studies.objective, "train_run", interrupted_second_trial)
    code, _, err = cli("sweep", spec)
    assert code == 130, err
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert len(points_done(storage)) == 1
    monkeypatch.setattr(textclf.studies.objective, "train_run", real_train_run)
    code, _, err = cli("sweep", spec)
    assert code == 0, err
    # each point once; the interrupted one was run
    assert points_done(storage) == sorted(LEARNING_RATES)
    code, _, err = cli("sweep", spec)  # nothing left: no trial at all
    assert code == 0, err
    study = optuna.load_study(study_name="grid", storage=storage)
    assert [t.state.name for t in study.trials].count("COMPLETE") == 3 and len(study.trials) == 4


POPPER = r"""
import json, sys, time
import optuna
from textclf.studies.spec_file import load_spec
from textclf.studies.storage import open_study
optuna.logging.set_verbosity(optuna.logging.ERROR)
spec_path, url, out, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
study = open_study(load_spec(spec_path, ()), url)
while time.time() < start:
    time.sleep(0.001)
popped = []
while (trial_id := study._pop_waiting_trial_id()) is not None:
    popped.append(trial_id)
json.dump(popped, open(out, "w"))
"""


def test_concurrent_workers_never_pop_the_same_waiting_trial_on_sqlite(tmp_path, tiny_sweep):
    """SQLite has no row locks (Optuna's SELECT ... FOR UPDATE is a no-op there): three processes
    popping 60 waiting trials at once popped 72, running 11 trials twice, before pops were
    serialized across processes."""
    import json
    import subprocess
    import sys
    import time

    from textclf.studies.spec_file import load_spec
    from textclf.studies.storage import open_study

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = open_study(load_spec(tiny_sweep, ()), url)
    for i in range(60):
        study.enqueue_trial(
            {"train.learning_rate": 5e-3}, user_attrs={"i": i}, skip_if_exists=False
        )
    start = time.time() + 6  # all three are importing by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                POPPER,
                str(tiny_sweep),
                url,
                str(tmp_path / f"{i}.json"),
                str(start),
            ]
        )
        for i in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    popped = [t for i in range(3) for t in json.loads((tmp_path / f"{i}.json").read_text())]
    assert len(popped) == 60 and len(set(popped)) == 60
