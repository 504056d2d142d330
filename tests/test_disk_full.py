"""A full disk (ENOSPC) during a checkpoint, the model artifact, the metric journal and the token
cache, on a small tmpfs made for each test (root only; skipped with the reason elsewhere).

A run that cannot write what it must ends FAILED with the reason; nothing half-written is read later
(atomic write + rename); after space is freed, `--resume` continues from the last good checkpoint to
the result of an uninterrupted run. Writes that only save time (the token cache, the outage journal)
are skipped with a warning, and the run goes on. docs/reliability.md, "A full disk".
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from pathlib import Path

import mlflow
import pytest

from textclf.config import load_config
from textclf.run import train_run

MIB = 2**20


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted at tmp_path/disk for the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode:
        pytest.skip(
            "cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN): "
            + (made.stderr.strip() or f"mount exited {made.returncode}")
        )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves `leave` bytes free on `disk`."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.truncate(0)
        f.write(b"\0" * max(free - leave, 0))  # tmpfs allocates what is written
    return filler


def overrides_for(tiny_overrides, tmp_path, *extra: str) -> list[str]:
    return [
        *tiny_overrides,
        "train.epochs=3",
        "train.patience=0",
        "tracking.log_model=false",
        "tracking.log_figures=false",
        *extra,
    ]


def test_a_full_disk_during_a_checkpoint_fails_the_run_and_resume_equals_the_uninterrupted_run(
    tmp_path, tiny_overrides, small_disk, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = overrides_for(tiny_overrides, tmp_path, "train.checkpoint=true")
    straight = train_run(
        load_config(None, [*base, f"train.checkpoint_dir={tmp_path / 'ckpt'}"]), uri
    )
    size = sum(p.stat().st_size for p in (tmp_path / "ckpt" / straight.run_id).iterdir())
    # epoch 1's checkpoint fits; epoch 2's does not (the previous one is deleted only after it)
    cfg = load_config(None, [*base, f"train.checkpoint_dir={small_disk}"])
    filler = fill(small_disk, leave=int(1.5 * size))
    with pytest.raises(OSError) as failed:
        train_run(cfg, uri)
    assert failed.value.errno == errno.ENOSPC
    mlflow.set_tracking_uri(uri)
    run = next(
        r
        for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
        if r.info.run_id != straight.run_id
    )
    assert run.info.status == "FAILED"
    assert "No space left on device" in run.data.tags["textclf.error"]
    left = sorted(p.name for p in (small_disk / run.info.run_id).iterdir())
    assert left == ["config.json", "epoch-1.json", "epoch-1.safetensors"], left  # nothing torn
    filler.unlink()  # space freed
    resumed = train_run(cfg, uri, resume=run.info.run_id)
    for key in ("test_loss", "test_accuracy", "best_val_loss", "best_val_accuracy", "best_epoch"):
        assert resumed.metrics[key] == straight.metrics[key], key  # bit-exact
    assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"


def test_a_full_disk_during_the_model_artifact_fails_the_run_and_leaves_no_model_to_load(
    tmp_path, tiny_overrides, small_disk, monkeypatch, cli
):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    overrides = overrides_for(tiny_overrides, tmp_path, "tracking.log_model=true")
    experiment = next(o.split("=", 1)[1] for o in overrides if o.startswith("tracking.experiment="))
    mlflow.create_experiment(experiment, artifact_location=small_disk.as_uri())
    # the run's small artifacts (~36 KiB in pages) fit; the model (~120) not
    fill(small_disk, leave=72 * 1024)
    with pytest.raises(OSError) as failed:
        train_run(load_config(None, overrides), uri)
    assert failed.value.errno == errno.ENOSPC
    run = mlflow.search_runs(experiment_names=[experiment], output_format="list")[0]
    assert run.info.status == "FAILED"
    assert "No space left on device" in run.data.tags["textclf.error"]
    code, _, err = cli(
        "predict",
        "--tracking-uri",
        uri,
        "--model-uri",
        f"runs:/{run.info.run_id}/model",
        "some text",
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err  # refused, never a torn model


def test_a_full_disk_for_the_journal_and_the_token_cache_warns_and_the_run_finishes(
    tmp_path, tiny_overrides, small_disk, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEXTCLF_CACHE", str(small_disk / "cache"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    straight = train_run(
        load_config(None, overrides_for(tiny_overrides, tmp_path, "data.token_cache=false")), uri
    )
    (small_disk / "cache").mkdir(exist_ok=True)
    fill(small_disk, leave=0)
    overrides = overrides_for(tiny_overrides, tmp_path, f"tracking.journal_dir={small_disk / 'j'}")
    with caplog.at_level(logging.WARNING):
        done = train_run(load_config(None, overrides), uri)
    assert done.metrics["test_accuracy"] == straight.metrics["test_accuracy"]
    assert "token cache" in caplog.text and "No space left on device" in caplog.text
    assert not [p for p in (small_disk / "cache").rglob("*") if p.is_file()], "a half-written file"
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(done.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["textclf.journal"].startswith("off: ") and "No space left" in caplog.text
    assert run.data.metrics["test_accuracy"] == done.metrics["test_accuracy"]  # sent all the same
