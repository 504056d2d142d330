"""Checkpoints: a run killed with kill -9 mid-epoch and resumed ends bit-identical to an
uninterrupted run (CPU), and a checkpoint torn by a kill while it was written is never picked up."""

import json
import signal

import mlflow
import torch

from test_faults import deliver, launch
from test_run import experiment_of
from textclf.config import load_config
from textclf.run import train_run
from textclf.training import checkpoint


def test_a_torn_or_uncommitted_checkpoint_is_never_loaded(tmp_path):
    assert checkpoint.load(tmp_path) is None
    checkpoint.save(tmp_path, 1, {"w": torch.ones(3)}, {"note": "first"})
    # a kill after the tensors were renamed into place but before the commit mark: epoch 2 has no
    # JSON
    checkpoint.save(tmp_path, 2, {"w": torch.full((3,), 2.0)}, {"note": "second"})
    (tmp_path / "epoch-2.json").unlink()
    (tmp_path / "epoch-1.safetensors").write_bytes(b"")  # and epoch 1 lost too: nothing is usable
    assert checkpoint.load(tmp_path) is None
    checkpoint.save(tmp_path, 3, {"w": torch.full((3,), 3.0)}, {"note": "third"})
    tensors, meta = checkpoint.load(tmp_path)
    assert meta["note"] == "third" and tensors["w"].tolist() == [3.0] * 3
    checkpoint.save(tmp_path, 4, {"w": torch.full((3,), 4.0)}, {"note": "fourth"})
    data = (tmp_path / "epoch-4.safetensors").read_bytes()
    # torn: the hash does not match
    (tmp_path / "epoch-4.safetensors").write_bytes(data[: len(data) // 2])
    # a temporary file of a killed save
    (tmp_path / ".epoch-5.safetensors.tmp123").write_bytes(b"half")
    assert checkpoint.load(tmp_path) is None or checkpoint.load(tmp_path)[1]["note"] != "fourth"
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == [
        "epoch-4.json",
        "epoch-4.safetensors",
    ]


def test_kill_9_mid_epoch_then_resume_equals_the_uninterrupted_run(
    tmp_path, tiny_overrides, monkeypatch
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [
        *tiny_overrides,
        "train.epochs=4",
        "train.patience=0",
        "train.checkpoint=true",
        f"train.checkpoint_dir={tmp_path / 'ckpt'}",
        "tracking.log_model=false",
        "tracking.heartbeat_s=1",
    ]
    monkeypatch.chdir(tmp_path)
    straight = train_run(load_config(None, overrides), uri)
    args = [a for o in overrides for a in ("-o", o)]
    proc, started = launch(tmp_path, "hang-epoch-3", ["train", "--tracking-uri", uri, *args])
    code, _ = deliver(proc, started, signal.SIGKILL)  # started: the injected epoch 3 is under way
    assert code == -signal.SIGKILL
    mlflow.set_tracking_uri(uri)
    killed = next(
        r
        for r in mlflow.search_runs(
            experiment_names=[experiment_of(overrides)], output_format="list"
        )
        if r.info.run_id != straight.run_id
    )
    assert killed.info.status == "RUNNING"
    assert (
        json.loads((tmp_path / "ckpt" / killed.info.run_id / "epoch-2.json").read_text())["epoch"]
        == 2
    )
    resumed = train_run(load_config(None, overrides), uri, resume=killed.info.run_id)
    assert resumed.run_id == killed.info.run_id
    for key in (
        "test_loss",
        "test_accuracy",
        "best_val_loss",
        "best_val_accuracy",
        "best_epoch",
        "test_f1",
    ):
        assert resumed.metrics[key] == straight.metrics[key], key  # bit-exact, not approximately
    client = mlflow.MlflowClient()
    for key in ("train_loss", "val_loss"):
        a = [(m.step, m.value) for m in client.get_metric_history(straight.run_id, key)]
        b = [(m.step, m.value) for m in client.get_metric_history(resumed.run_id, key)]
        assert sorted(b) == sorted(a) and len(b) == 4  # every epoch once, equal values
    assert client.get_run(resumed.run_id).info.status == "FINISHED"
