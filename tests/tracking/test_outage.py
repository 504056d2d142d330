"""The tracking server goes away during training (a real `mlflow server`, stopped and restarted on
the same port): training keeps going, no log call blocks for more than about a second, and once the
server is back every per-epoch metric is there exactly once per step."""

import threading
import time

import mlflow
import pytest

from textclf.config import load_config
from textclf.ops import server
from textclf.run import train_run
from textclf.tracking import runs
from textclf.training import loop as train_mod

EPOCH_KEYS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "epoch_time_s",
    "epoch_train_val_loss_ratio",
)


@pytest.mark.slow  # ~2 min for 30 s (three server starts on 2 cores), ~7 min for 5 minutes
@pytest.mark.parametrize("outage_s", [30, 300])
def test_training_outlives_a_tracking_server_outage(
    outage_s, tiny_overrides, tmp_path, monkeypatch
):
    backend, artifacts, log_path = (
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        tmp_path / "art",
        tmp_path / "server.log",
    )
    port = server.free_port()
    proc, url = server.start(backend, artifacts, log_path, port=port)
    real_epoch, real_log = train_mod.train_epoch, runs.ActiveRun.log_epoch
    # each epoch takes a little over a second: training outlasts the outage
    epochs = int(outage_s / 1.0) + 20
    calls, outage = [], {}
    stop_after_epoch = threading.Event()

    def slow_epoch(
        *args, **kwargs
    ):  # a tiny model trains in milliseconds; a real one takes this long
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
        cfg = load_config(
            None,
            [
                *tiny_overrides,
                f"train.epochs={epochs}",
                "train.patience=0",
                "tracking.log_model=false",
            ],
        )
        result = train_run(cfg, url)
        breaker.join(timeout=outage_s + 150)
    finally:
        server.stop(proc)
    client = mlflow.MlflowClient(backend)  # what the server stored, read from its backend store
    run = client.get_run(result.run_id)
    histories = {
        key: [m.step for m in client.get_metric_history(result.run_id, key)] for key in EPOCH_KEYS
    }
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
    print(
        f"MEASURED outage {outage_s} s: {len(during)} epochs logged while the server was away, "
        f"longest log call {max(s for _, s, _ in calls):.3f} s, "
        f"{result.metrics['tracking_failed_sends']:.0f} failed sends, "
        f"{epochs} epochs x {len(EPOCH_KEYS)} keys all present once"
    )


SLOW_TRAINING = r"""
import sys, time
import textclf.training.loop as loop
real_epoch = loop.train_epoch
def slow_epoch(*args, **kwargs):  # a tiny model trains in milliseconds; a real one takes this long
    time.sleep(1.0)
    return real_epoch(*args, **kwargs)
loop.train_epoch = slow_epoch
from textclf.cli import main
sys.argv = ["textclf", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # ~1.5 min: two server starts, a dozen 1-second epochs
def test_a_process_killed_during_an_outage_loses_no_epoch(tiny_overrides, tmp_path):
    """Server stopped after epoch 3, the training process killed with -9 while the server is away,
    server restarted, `textclf sync`: every (key, step) the process journaled is in the run exactly
    once, the run is FAILED, nothing is RUNNING, and the journal is gone."""
    import json
    import os
    import subprocess
    import sys

    backend, journals = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "journal"
    port = server.free_port()
    proc, url = server.start(backend, tmp_path / "art", tmp_path / "server.log", port=port)
    overrides = [
        *tiny_overrides,
        "train.epochs=40",
        "train.patience=0",
        "tracking.log_model=false",
        f"tracking.journal_dir={journals}",
        "tracking.heartbeat_s=1",
    ]
    trainer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_TRAINING,
            "train",
            "--tracking-uri",
            url,
            *[a for o in overrides for a in ("-o", o)],
        ],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    client = mlflow.MlflowClient(backend)  # the server's own store, read directly
    try:
        deadline = time.time() + 180
        while (
            not (runs := client.search_runs([e.experiment_id for e in client.search_experiments()]))
            or len(client.get_metric_history(runs[0].info.run_id, "val_loss")) < 3
        ):
            assert trainer.poll() is None and time.time() < deadline, trainer.communicate()[0][
                -3000:
            ]
            time.sleep(0.2)
        run_id = runs[0].info.run_id
        server.stop(proc)
        journal = journals / f"{run_id}.jsonl"
        while (
            max(
                [
                    line[2]
                    for line in map(json.loads, journal.read_text().splitlines()[1:])
                    if isinstance(line, list)
                ],
                default=0,
            )
            < 7
        ):  # epochs 4..7 journaled while the server is away
            assert trainer.poll() is None and time.time() < deadline, trainer.communicate()[0][
                -3000:
            ]
            time.sleep(0.2)
        trainer.kill()
        trainer.wait(timeout=30)
        entries = [
            line
            for line in map(json.loads, journal.read_text().splitlines()[1:])
            if isinstance(line, list)
        ]
        last = max(step for _, _, step, _ in entries)
        proc, _ = server.start(backend, tmp_path / "art", tmp_path / "server.log", port=port)
        synced = subprocess.run(
            [
                sys.executable,
                "-m",
                "textclf",
                "sync",
                "--tracking-uri",
                url,
                "--journal-dir",
                journals,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    finally:
        if trainer.poll() is None:
            trainer.kill()
        server.stop(proc)
    assert synced.returncode == 0, synced.stderr[-3000:]
    assert (
        f"run {run_id}: {len(entries)} metric values sent" in synced.stdout
        and "ended FAILED" in synced.stdout
    )
    for key in EPOCH_KEYS:  # every epoch the process finished, once
        assert [
            m.step for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        ] == list(range(1, last + 1)), key
    run = client.get_run(run_id)
    assert (
        run.info.status == "FAILED"
        and "replayed from its journal" in run.data.tags["textclf.error"]
    )
    assert not client.search_runs([run.info.experiment_id], "attributes.status = 'RUNNING'")
    assert list(journals.iterdir()) == []
    print(
        f"MEASURED kill -9 during an outage: epochs 1-3 sent live, {last - 3} epochs "
        f"({len(entries)} values) journaled while the server was away and replayed by textclf "
        "sync; run FAILED, none lost or doubled"
    )


def test_at_a_terminal_a_server_that_never_answered_fails_fast(
    cli, tiny_overrides, tmp_path, monkeypatch
):
    """A typo in --tracking-uri at a terminal: one line within TERMINAL_WAIT_S (30 s; 1 s here), not
    tracking.outage_wait_s (900 s), which non-interactive workers keep (a pod that starts before its
    server)."""
    import sys
    import time

    from textclf.ops.server import free_port
    from textclf.tracking import store

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(store, "TERMINAL_WAIT_S", 1.0)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    assert store.startup_wait(900.0) == 1.0
    start = time.monotonic()
    code, _, err = cli(
        "train",
        "--tracking-uri",
        f"http://127.0.0.1:{free_port()}",
        *[a for o in tiny_overrides for a in ("-o", o)],
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no MLflow tracking server" in err
    assert time.monotonic() - start < 20
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert store.startup_wait(900.0) == 900.0  # a worker without a terminal keeps the long wait
