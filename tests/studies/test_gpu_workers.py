"""One GPU per worker: the environment each worker process receives, for 0, 1 and 4 visible GPUs
(the GPU list is injected; no GPU is needed)."""

from __future__ import annotations

import pytest

from textclf.errors import InputError
from textclf.studies.workers import plan


def devices(environments):
    return [env.get("CUDA_VISIBLE_DEVICES") for env in environments]


@pytest.mark.parametrize(
    "available, workers, gpus, expected",
    [
        ([], "3", None, [None, None, None]),  # no GPU: no device set (threads: test_threads)
        ([], "auto", None, [None]),
        (["0"], "2", None, ["0", "0"]),
        (["0"], "auto", None, ["0"]),
        (["0", "1", "2", "3"], "4", None, ["0", "1", "2", "3"]),
        (["0", "1", "2", "3"], "auto", None, ["0", "1", "2", "3"]),
        (["0", "1", "2", "3"], "6", None, ["0", "1", "2", "3", "0", "1"]),  # K > G: round-robin
        (["0", "1", "2", "3"], "auto", "0,2", ["0", "2"]),
        (["0", "1", "2", "3"], "3", "2", ["2", "2", "2"]),
        # CUDA_VISIBLE_DEVICES=4,5 already restricted this machine
        (
            ["4", "5"],
            "2",
            None,
            ["4", "5"],
        ),
    ],
)
def test_each_worker_gets_one_gpu(available, workers, gpus, expected):
    assert devices(plan(workers, gpus, available)) == expected


@pytest.mark.parametrize(
    "workers, gpus, message",
    [
        ("0", None, "--workers 0: give a number of worker processes (>= 1) or auto"),
        ("many", None, "--workers many: give a number"),
        ("2", "1,7", "--gpus 1,7: GPU 7 is not visible here (visible: 0, 1)"),
    ],
)
def test_bad_worker_options_are_one_line(workers, gpus, message):
    with pytest.raises(InputError) as e:
        plan(workers, gpus, ["0", "1"])
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(message)


def test_worker_processes_receive_their_gpu_and_index(monkeypatch):
    """spawn() starts `textclf sweep ... --worker-index i` with the worker's own environment
    merged into this one."""
    import subprocess

    from textclf.studies import workers

    started = []

    class Fake:
        def __init__(self, argv, env):
            started.append((argv, env))

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Fake)
    code = workers.spawn(
        ["sweep", "s.yaml"],
        plan("3", None, ["0", "1"]),
        {"MLFLOW_TRACKING_URI": "http://x"},
        first_index=3,
    )
    assert code == 0
    assert [argv[-1] for argv, _ in started] == ["3", "4", "5"]
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["0", "1", "0"]
    assert all(env["MLFLOW_TRACKING_URI"] == "http://x" for _, env in started)


@pytest.mark.parametrize(
    "available, workers, gpus, expected",
    [
        (["0", "1", "2", "3"], "auto", None, ["0,1", "2,3"]),  # two trials at once, 2 GPUs each
        (["0", "1", "2", "3"], "1", None, ["0,1"]),
        (["0", "1", "2", "3", "4"], "auto", None, ["0,1", "2,3"]),  # GPU 4 alone makes no group
        (["0", "1", "2", "3"], "3", "1,3", ["1,3", "1,3", "1,3"]),  # K > groups: shared
    ],
)
def test_a_worker_takes_k_gpus_for_trials_on_k_devices(available, workers, gpus, expected):
    assert devices(plan(workers, gpus, available, per_trial=2)) == expected


def test_too_few_gpus_for_one_trial_is_one_line():
    with pytest.raises(InputError) as e:
        plan("auto", "0", ["0", "1"], per_trial=2)
    assert e.value.problems == [
        "--devices-per-trial 2: needs 2 GPUs per trial, and 1 are given (0); lower it or name "
        "more --gpus"
    ]


def test_devices_per_trial_becomes_every_trials_train_devices():
    from textclf.studies.request import SweepRequest

    request = SweepRequest("s.yaml", ("train.epochs=1",), devices_per_trial=2)
    assert request.config_overrides() == ("train.epochs=1", "train.devices=2")
    assert SweepRequest("s.yaml").config_overrides() == ()
