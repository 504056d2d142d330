"""tracking/: a run inside an already-active MLflow run (a notebook's, or a sweep's), each ActiveRun
with its own metric spool, and redaction of anything secret-shaped before it becomes a param or
tag."""

from __future__ import annotations

import mlflow
import pytest

from textclf.config import load_config
from textclf.run import train_run
from textclf.tracking import runs, store
from textclf.tracking.provenance import redact


def test_a_run_inside_an_active_run_becomes_its_child_and_leaves_it_active(
    tiny_overrides, tracking_uri
):
    """torchtune's MLflow logger breaks inside an active run; textclf nests its run under it
    instead."""
    cfg = load_config(None, [*tiny_overrides, "train.epochs=1", "tracking.log_model=false"])
    store.connect(tracking_uri, cfg.tracking.experiment)
    with mlflow.start_run(run_name="notebook") as outer:
        result = train_run(cfg, tracking_uri)
        # the outer run is still the active one
        assert mlflow.active_run().info.run_id == outer.info.run_id
        mlflow.log_metric("after", 1.0)
    client = mlflow.MlflowClient()
    inner = client.get_run(result.run_id)
    assert (
        inner.data.tags["mlflow.parentRunId"] == outer.info.run_id
        and inner.info.status == "FINISHED"
    )
    assert client.get_run(outer.info.run_id).info.status == "FINISHED"
    assert "test_accuracy" in inner.data.metrics
    assert "test_accuracy" not in client.get_run(outer.info.run_id).data.metrics


def test_each_active_run_has_its_own_spool(tiny_overrides, tracking_uri):
    cfg = load_config(None, tiny_overrides)
    store.connect(tracking_uri, cfg.tracking.experiment)
    with runs.run(cfg.tracking, {}) as first:
        first.log_epoch({"val_loss": 0.5, "train_val_loss_ratio": 0.9}, 1)
        with runs.run(cfg.tracking, {}) as second:  # nested: a second run while the first is active
            second.log_epoch({"val_loss": 0.7}, 1)
            assert second.spool is not first.spool
        first.log_epoch({"val_loss": 0.4}, 2)
    client = mlflow.MlflowClient()
    assert [m.value for m in client.get_metric_history(first.run_id, "val_loss")] == [0.5, 0.4]
    assert [m.value for m in client.get_metric_history(second.run_id, "val_loss")] == [0.7]
    # the per-epoch ratio has its own key: the final value is the best epoch's, not the last epoch's
    assert [
        m.value for m in client.get_metric_history(first.run_id, "epoch_train_val_loss_ratio")
    ] == [0.9]
    assert first.spool.pending == [] and second.spool.pending == []


def test_a_failed_run_ends_failed_with_the_error_and_the_metrics_it_had(
    tiny_overrides, tracking_uri
):
    cfg = load_config(None, tiny_overrides)
    store.connect(tracking_uri, cfg.tracking.experiment)
    with pytest.raises(RuntimeError), runs.run(cfg.tracking, {}) as active:
        active.log_epoch({"val_loss": 0.5}, 1)
        raise RuntimeError("boom")
    run = mlflow.MlflowClient().get_run(active.run_id)
    assert run.info.status == "FAILED" and run.data.tags["textclf.error"] == "RuntimeError: boom"
    assert run.data.metrics["val_loss"] == 0.5


def test_secrets_never_reach_params():
    assert (
        redact("tracking.uri", "postgresql://me:hunter2@db:5432/mlflow")
        == "postgresql://me:<redacted>@db:5432/mlflow"
    )
    assert redact("hub.token", "anything") == "<redacted>"
    assert redact("model.name", "hf_" + "a" * 30) == "<redacted>"
    assert redact("data.label_names", ("neg", "pos")) == "neg,pos"


def test_runs_log_mlflows_system_metrics(cli, tiny_overrides, tracking_uri):
    """CPU, memory, disk and network from MLflow's own sampler (GPU series through NVML on a GPU
    machine)."""
    # long enough for a sample: MLflow's sampler logs nothing for a run shorter than its interval
    # (CI-sized tiny runs can end in under 0.5 s)
    args = [
        a
        for o in [
            *tiny_overrides,
            "tracking.system_metrics_interval_s=0.5",
            "tracking.log_model=false",
            "train.epochs=30",
            "train.patience=0",
        ]
        for a in ("-o", o)
    ]
    code, _, err = cli("train", "--tracking-uri", tracking_uri, *args)
    assert code == 0, err
    mlflow.set_tracking_uri(tracking_uri)
    [run] = mlflow.search_runs(
        experiment_names=[tiny_overrides[-1].split("=", 1)[1]], output_format="list"
    )
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(
        run.data.metrics
    ), err
    off = [
        a
        for o in [
            *tiny_overrides,
            "tracking.system_metrics=false",
            "tracking.log_model=false",
            "tracking.experiment=no-system-metrics",
        ]
        for a in ("-o", o)
    ]
    code, _, err = cli("train", "--tracking-uri", tracking_uri, *off)
    [quiet] = mlflow.search_runs(experiment_names=["no-system-metrics"], output_format="list")
    assert code == 0 and not [k for k in quiet.data.metrics if k.startswith("system/")]


def test_log_figures_off_logs_no_plots_and_never_imports_matplotlib(tiny_overrides, tracking_uri):
    """A minimal install (the GPU benchmark's carried wheelhouse, bench/device) has no
    matplotlib."""
    import subprocess
    import sys

    args = [
        a
        for o in [
            *tiny_overrides,
            "tracking.log_figures=false",
            "tracking.log_model=false",
            "tracking.system_metrics=false",
            "tracking.experiment=no-figures",
        ]
        for a in ("-o", o)
    ]
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('matplotlib imported:', 'matplotlib' in sys.modules))\n"
        "from textclf.cli import main\n"
        f"sys.argv = ['textclf', 'train', '--tracking-uri', {tracking_uri!r}, *{args!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "matplotlib imported: False" in done.stdout
    mlflow.set_tracking_uri(tracking_uri)
    [run] = mlflow.search_runs(experiment_names=["no-figures"], output_format="list")
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert run.info.status == "FINISHED" and "confusion_matrix.json" in logged
    assert not {"curves.png", "confusion_matrix.png"} & logged


def test_a_resumed_run_does_not_log_a_step_series_twice(tiny_overrides, tracking_uri):
    """A run killed after its fit logged `learning_rate_step` (during the test pass, say) and
    resumed: fit restores the whole series from the checkpoint and logs it again; the run keeps one
    value per step (a resumed run's spool asks the server what it has before its first send)."""
    cfg = load_config(None, tiny_overrides)
    store.connect(tracking_uri, cfg.tracking.experiment)
    with runs.run(cfg.tracking, {}) as first:
        first.log_steps("learning_rate_step", [1e-3, 5e-4])
    with runs.run(cfg.tracking, {}, resume=first.run_id) as again:
        again.log_steps("learning_rate_step", [1e-3, 5e-4, 0.0])
    history = mlflow.MlflowClient().get_metric_history(first.run_id, "learning_rate_step")
    assert sorted((m.step, m.value) for m in history) == [(1, 1e-3), (2, 5e-4), (3, 0.0)]
