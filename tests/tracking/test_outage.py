"""The tracking server goes away during training (a real `mlflow server`, stopped and restarted on the same
port): training keeps going, no log call blocks for more than about a second, and once the server is back
every per-epoch metric is there exactly once per step."""
import threading
import time

import mlflow
import pytest

from textclf.config import load_config
from textclf.run import train_run
from textclf.tracking import runs, server
from textclf.training import loop as train_mod

EPOCH_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s",
              "epoch_train_val_loss_ratio")


@pytest.mark.slow  # ~2 min for 30 s (three server starts on 2 cores), ~7 min for 5 minutes
@pytest.mark.parametrize("outage_s", [30, 300])
def test_training_outlives_a_tracking_server_outage(outage_s, tiny_overrides, tmp_path, monkeypatch):
    backend, artifacts, log_path = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "art", tmp_path / "server.log"
    port = server.free_port()
    proc, url = server.start(backend, artifacts, log_path, port=port)
    real_epoch, real_log = train_mod.train_epoch, runs.ActiveRun.log_epoch
    epochs = int(outage_s / 1.0) + 20  # each epoch takes a little over a second: training outlasts the outage
    calls, outage = [], {}
    stop_after_epoch = threading.Event()

    def slow_epoch(*args, **kwargs):  # a tiny model trains in milliseconds; a real one takes this long
        time.sleep(1.0)
        return real_epoch(*args, **kwargs)

    def timed_log(self, metrics, epoch):
        start = time.perf_counter()
        real_log(self, metrics, epoch)
        calls.append((epoch, time.perf_counter() - start, time.monotonic()))
        if epoch == 3:
            stop_after_epoch.set()

    def break_server():
        nonlocal proc
        stop_after_epoch.wait()
        server.stop(proc)
        outage["start"] = time.monotonic()
        time.sleep(outage_s)
        proc, _ = server.start(backend, artifacts, log_path, port=port)
        outage["end"] = time.monotonic()

    monkeypatch.setattr(train_mod, "train_epoch", slow_epoch)
    monkeypatch.setattr(runs.ActiveRun, "log_epoch", timed_log)
    breaker = threading.Thread(target=break_server, daemon=True)
    breaker.start()
    try:
        cfg = load_config(None, tiny_overrides + [f"train.epochs={epochs}", "train.patience=0",
                                                  "tracking.log_model=false"])
        result = train_run(cfg, url)
        breaker.join(timeout=outage_s + 150)
    finally:
        server.stop(proc)
    client = mlflow.MlflowClient(backend)  # what the server stored, read from its backend store
    run = client.get_run(result.run_id)
    histories = {key: [m.step for m in client.get_metric_history(result.run_id, key)] for key in EPOCH_KEYS}
    assert run.info.status == "FINISHED"
    during = [c for c in calls if outage["start"] <= c[2] <= outage["end"]]
    assert outage["end"] - outage["start"] >= outage_s and len(calls) == epochs
    assert len(during) >= outage_s / 2  # training went on through the outage, logging each epoch
    assert result.metrics["tracking_failed_sends"] >= len(during) - 1
    # training never waited on the server: about a second at most per log call
    assert max(seconds for _, seconds, _ in calls) < 1.5
    assert result.metrics["tracking_longest_wait_s"] < 1.5
    for key, steps in histories.items():  # every epoch once: none lost, none duplicated
        assert steps == list(range(1, epochs + 1)), key
    print(f"MEASURED outage {outage_s} s: {len(during)} epochs logged while the server was away, longest log "
          f"call {max(s for _, s, _ in calls):.3f} s, {result.metrics['tracking_failed_sends']:.0f} failed sends, "
          f"{epochs} epochs x {len(EPOCH_KEYS)} keys all present once")
