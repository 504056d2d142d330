"""`textclf train -o train.devices=2` on CPU: two gloo processes started by torch.distributed's
launcher train one model, and MLflow holds one run (rank 0's). A rank that dies fails the run
within a minute and leaves no process behind; Ctrl-C ends it KILLED (exit 130) within 10 s."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import mlflow
import psutil
import pytest

from conftest import train_command, write_tiny_sweep
from textclf.errors import InputError


def the_run(uri: str, experiment: str):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def experiment_of(overrides: list[str]) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.startswith("tracking.experiment="))


def test_two_processes_log_one_run_with_one_model(tiny_overrides, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [o for o in tiny_overrides if not o.startswith(("train.epochs", "train.batch"))]
    done = subprocess.run(
        train_command(uri, overrides, "train.devices=2", "train.epochs=2", "train.batch_size=8"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = the_run(uri, experiment_of(overrides))
    client = mlflow.MlflowClient()
    assert run.info.status == "FINISHED"
    assert run.data.params["train.devices"] == "2"
    assert run.data.metrics["train.effective_batch_size"] == 16  # 8 a rank x 2 ranks
    for key in ("train_loss", "val_loss", "learning_rate"):  # rank 0's epochs, once each
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2]
    assert run.data.metrics["test_accuracy"] > 0.9  # the synthetic task is easy
    assert {"config.yaml"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    [model] = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert model.source_run_id == run.info.run_id
    assert "rank 1" not in done.stderr  # the other rank says nothing unless it fails


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.devices=0", "train.devices: must be >= 1"),
        ("train.compile=true", "train.devices: above 1 does not yet combine with train.compile"),
        ("train.device=cuda:1", "train.devices: above 1 takes GPUs 0..N-1"),
    ],
)
def test_bad_device_counts_exit_2_before_any_process_starts(
    cli, tiny_overrides, tracking_uri, override, message
):
    extra = [] if override == "train.devices=0" else ["train.devices=2"]
    args = [a for o in [*tiny_overrides, *extra, override] for a in ("-o", o)]
    code, _, err = cli("train", "--tracking-uri", tracking_uri, *args)
    assert code == 2 and message in err, err


def test_data_in_memory_cannot_go_to_several_processes(tiny_model, tmp_path):
    import textclf
    from conftest import sentiment_frame

    with pytest.raises(InputError, match="cannot share data given in memory"):
        textclf.train(
            None,
            [f"model.name={tiny_model}", "train.devices=2", "data.label_names=neg,pos"],
            train=sentiment_frame(100),
            tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        )


def ranks_of(launcher: psutil.Process) -> dict[int, psutil.Process]:
    """The launcher's rank processes by rank."""
    found = {}
    for child in launcher.children(recursive=True):
        try:
            if "textclf.run.rank" in " ".join(child.cmdline()):
                found[int(child.environ().get("RANK", -1))] = child
        except psutil.NoSuchProcess:
            continue
    return found


def start_long_run(tiny_overrides, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [o for o in tiny_overrides if not o.startswith("train.epochs")]
    proc = subprocess.Popen(
        train_command(uri, overrides, "train.devices=2", "train.epochs=500", "train.patience=0"),
        stderr=subprocess.PIPE,
        text=True,
    )
    experiment = experiment_of(overrides)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        runs = _quiet(lambda: the_run(uri, experiment))
        if runs and mlflow.MlflowClient().get_metric_history(runs[0].info.run_id, "val_loss"):
            break  # training: an epoch is logged
        time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    return proc, uri, experiment


def _quiet(read):
    try:
        return read()
    except mlflow.exceptions.MlflowException:
        return []


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_within_a_minute_and_leaves_no_process(
    tiny_overrides, tmp_path
):
    proc, uri, experiment = start_long_run(tiny_overrides, tmp_path)
    launcher = psutil.Process(proc.pid)
    everyone = [launcher, *ranks_of(launcher).values()]
    ranks_of(launcher)[1].kill()
    killed = time.monotonic()
    _, err = proc.communicate(timeout=90)
    assert time.monotonic() - killed <= 60
    assert proc.returncode == 1 and "rank 1 was killed by SIGKILL" in err, err[-3000:]
    [run] = the_run(uri, experiment)
    assert run.info.status == "FAILED"
    assert "rank 1" in run.data.tags["textclf.error"]
    time.sleep(1.0)
    assert not [p for p in everyone if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.slow
def test_ctrl_c_ends_every_rank_and_the_run_killed_within_10_s(tiny_overrides, tmp_path):
    proc, uri, experiment = start_long_run(tiny_overrides, tmp_path)
    launcher = psutil.Process(proc.pid)
    everyone = [launcher, *ranks_of(launcher).values()]
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    proc.communicate(timeout=60)
    assert time.monotonic() - sent <= 10
    assert proc.returncode == 130
    [run] = the_run(uri, experiment)
    assert run.info.status == "KILLED"
    assert not [p for p in everyone if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.slow  # three trials of two processes each: ~2 minutes on 2 cores
def test_a_sweep_runs_each_trial_on_two_processes(tiny_model, tiny_data, tmp_path):
    """--devices-per-trial 2 on CPU (gloo): every trial is a 2-process run with one MLflow child;
    rank 0 tells the pruner each epoch, and a prune there ends both ranks (the trial PRUNED)."""
    grid = [{"train.learning_rate": lr} for lr in (5e-3, 1e-2, 1e-9)]
    spec = write_tiny_sweep(
        tmp_path, tiny_model, tiny_data, grid, experiment="ranks-sweep", batch_size=8
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "textclf",
            "sweep",
            str(spec),
            "--devices-per-trial",
            "2",
            "--storage",
            f"sqlite:///{tmp_path / 'optuna.db'}",
            "--tracking-uri",
            uri,
            "-o",
            "train.progress=false",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = the_run(uri, "ranks-sweep")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(runs) == 4 and len(children) == 3  # the parent and one child per trial
    assert all(r.data.params["train.devices"] == "2" for r in children)
    statuses = sorted(r.info.status for r in children)
    assert statuses == ["FINISHED", "FINISHED", "KILLED"]  # the 1e-9 trial pruned on rank 0
    import optuna

    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert all("mlflow_run_id" in t.user_attrs for t in study.trials)


@pytest.mark.slow  # three 2-process runs: ~1-2 minutes on 2 cores
def test_a_two_process_run_stopped_after_its_first_checkpoint_resumes_to_the_same_result(
    tiny_overrides, tmp_path
):
    """Rank 0 writes each epoch's checkpoint with every rank's random state, and every rank resumes
    from it: a run stopped after epoch 1 and resumed ends with the very figures of a run never
    stopped (CPU, gloo: bit-identical)."""
    overrides = [o for o in tiny_overrides if not o.startswith(("train.epochs", "train.batch"))]
    extra = [
        "train.devices=2",
        "train.epochs=3",
        "train.patience=0",
        "train.batch_size=8",
        "train.checkpoint=true",
        f"train.checkpoint_dir={tmp_path / 'checkpoints'}",
    ]
    whole_uri = f"sqlite:///{tmp_path / 'whole.db'}"
    whole = subprocess.run(
        train_command(whole_uri, overrides, *extra), capture_output=True, text=True, timeout=600
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    [uninterrupted] = the_run(whole_uri, experiment_of(overrides))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        train_command(uri, overrides, *extra), stderr=subprocess.PIPE, text=True
    )
    deadline, run_id = time.time() + 180, None
    while time.time() < deadline and proc.poll() is None:
        runs = _quiet(lambda: the_run(uri, experiment_of(overrides)))
        run_id = runs[0].info.run_id if runs else None
        if run_id and list((tmp_path / "checkpoints" / run_id).glob("epoch-1.json")):
            break  # epoch 1's checkpoint is committed
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and run_id
    assert not (tmp_path / "checkpoints" / run_id / "epoch-3.json").exists()  # stopped early

    resumed = subprocess.run(
        [*train_command(uri, overrides, *extra), "--resume", run_id],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    [run] = the_run(uri, experiment_of(overrides))
    assert run.info.status == "FINISHED" and run.info.run_id == run_id
    # it went on from the checkpoint: no epoch trained (and logged) twice
    history = mlflow.MlflowClient().get_metric_history(run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2, 3]
    for key in ("best_val_loss", "test_loss", "test_accuracy", "train_val_loss_ratio"):
        assert run.data.metrics[key] == uninterrupted.data.metrics[key], key
