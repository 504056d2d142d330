"""The on-disk metric journal: written before each send, emptied once the server confirmed it, left
behind by a process killed during an outage, and replayed exactly once per (key, step) by `textclf
sync` (or the next textclf run on the same tracking URI), which then ends the dead run FAILED."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import mlflow

from textclf.tracking.journal import Journal, replay
from textclf.tracking.spool import Spool


def lines_of(path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_values_are_on_disk_until_the_server_confirms_them(tmp_path):
    journal = Journal(tmp_path, "sqlite:///x.db", "run1")
    down = {"now": True}

    def send(entries):
        if down["now"]:
            raise ConnectionError("server away")

    spool = Spool(send, lambda keys: set(), journal=journal)
    spool.add({"val_loss": 0.5, "val_accuracy": 0.7}, 1)
    assert not spool.flush()
    spool.add({"val_loss": 0.4, "val_accuracy": 0.8}, 2)
    assert not spool.flush()
    header, *entries = lines_of(journal.path)
    assert header["uri"] == "sqlite:///x.db" and header["run_id"] == "run1"
    assert [(key, step) for key, _, step, _ in entries] == [
        ("val_loss", 1),
        ("val_accuracy", 1),
        ("val_loss", 2),
        ("val_accuracy", 2),
    ]
    down["now"] = False
    assert spool.flush()
    assert len(lines_of(journal.path)) == 1  # only the header: the server has everything
    journal.close(remove=not spool.pending)
    assert not journal.path.exists()


def test_a_live_writer_s_journal_is_never_replayed_and_a_dead_one_s_exactly_once(tmp_path):
    live = Journal(tmp_path, "uri-a", "live")
    live.append([("val_loss", 0.5, 1, 0)])
    dead = Journal(tmp_path, "uri-a", "dead")
    dead.append(
        [
            ("val_loss", 0.5, 1, 0),
            ("val_loss", 0.4, 2, 0),
            ("val_loss", 0.3, 3, 0),
            ("val_loss", 0.3, 3, 0),
        ]
    )
    dead._file.close()  # as a killed process: the kernel drops its lock, the file stays
    other = Journal(tmp_path, "uri-b", "elsewhere")
    other._file.close()
    sent, ended = [], []
    done = replay(
        tmp_path,
        "uri-a",
        lambda run, entries: sent.extend((run, e[0], e[2]) for e in entries),
        lambda run, keys: {("val_loss", 1)},
        lambda run, end, n: ended.append((run, end, n)),
    )
    # step 1 was there; step 3 once
    assert sent == [
        ("dead", "val_loss", 2),
        ("dead", "val_loss", 3),
    ]
    assert (
        ended == [("dead", None, 2)]
        and [d.run_id for d in done] == ["dead"]
        and done[0].already == 2
    )
    assert not dead.path.exists() and live.path.exists() and other.path.exists()
    # nothing left for uri-a but the live journal
    assert replay(tmp_path, "uri-a", None, None, None) == []
    live.close(remove=True)


def test_a_dead_journal_with_nothing_unsent_is_removed_and_its_run_left_to_the_reaper(tmp_path):
    """A worker killed while the server was fine: its run ends by the heartbeat reaper ("no
    heartbeat"), not by a replay that has nothing to replay."""
    empty = Journal(tmp_path, "u", "sent-everything")
    empty._file.close()
    stored = Journal(tmp_path, "u", "stored-before-the-kill")
    stored.append([("val_loss", 0.5, 1, 0)])
    stored._file.close()
    ended = []
    done = replay(
        tmp_path, "u", None, lambda run, keys: {("val_loss", 1)}, lambda *a: ended.append(a)
    )
    assert ended == [] and sorted((d.run_id, d.ended) for d in done) == [
        ("sent-everything", False),
        ("stored-before-the-kill", False),
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_torn_last_line_is_skipped(tmp_path):
    journal = Journal(tmp_path, "u", "torn")
    journal.append([("train_loss", 1.0, 1, 0)])
    journal._file.write('["train_loss", 0.9, 2')  # killed mid-write
    journal._file.close()
    sent = []
    replay(
        tmp_path,
        "u",
        lambda run, entries: sent.extend(entries),
        lambda run, keys: set(),
        lambda *a: None,
    )
    assert [(k, s) for k, _, s, _ in sent] == [("train_loss", 1)]


KILLED_WRITER = r"""
import os, signal, sys, mlflow
from pathlib import Path
from textclf.tracking.journal import Journal
from textclf.tracking.spool import Spool
mlflow.set_tracking_uri(sys.argv[1])
run = mlflow.MlflowClient().create_run(mlflow.MlflowClient().create_experiment("journal"))
journal = Journal(Path(sys.argv[2]), sys.argv[1], run.info.run_id)
sent = {"n": 0}
def send(entries):  # the server takes epochs 1-2, then goes away
    if sent["n"] >= 2:
        raise ConnectionError("server away")
    metrics = [mlflow.entities.Metric(k, v, t, s) for k, v, s, t in entries]
    mlflow.MlflowClient().log_batch(run.info.run_id, metrics=metrics)
    sent["n"] += 1
spool = Spool(send, lambda keys: set(), journal=journal)
for epoch in range(1, 6):
    spool.add({"val_loss": 1.0 / epoch, "train_loss": 2.0 / epoch}, epoch)
    spool.flush()
print(run.info.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sync_replays_a_killed_process_s_epochs_once_and_ends_its_run_failed(cli, tmp_path):
    uri, journals = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "journal"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, uri, str(journals)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run_id = proc.stdout.split()[0]
    client = mlflow.MlflowClient(uri)
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [1, 2]
    assert client.get_run(run_id).info.status == "RUNNING"
    code, out, err = cli("sync", "--tracking-uri", uri, "--journal-dir", journals)
    assert code == 0, err
    # epochs 1-2 reached the server (their values left the journal); epochs 3-5 are sent now
    assert f"run {run_id}: 6 metric values sent, 0 already there; ended FAILED" in out
    for key in ("val_loss", "train_loss"):
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == [1, 2, 3, 4, 5]
    run = client.get_run(run_id)
    assert (
        run.info.status == "FAILED"
        and "replayed from its journal" in run.data.tags["textclf.error"]
    )
    assert list(journals.iterdir()) == []
    code, out, _ = cli("sync", "--tracking-uri", uri, "--journal-dir", journals)
    assert code == 0 and "nothing to sync" in out
    assert len(client.get_metric_history(run_id, "val_loss")) == 5  # still once per step


def test_the_next_run_on_the_same_store_replays_dead_journals(
    cli, tmp_path, tiny_overrides, caplog
):
    uri, journals = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "journal"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, uri, str(journals)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    run_id = proc.stdout.split()[0]
    code, _, err = cli(
        "train",
        "--tracking-uri",
        uri,
        *[a for o in tiny_overrides for a in ("-o", o)],
        "-o",
        "train.epochs=1",
        "-o",
        "tracking.log_model=false",
        "-o",
        f"tracking.journal_dir={journals}",
    )
    assert code == 0, err
    assert f"run {run_id}: 6 metric values replayed" in caplog.text
    client = mlflow.MlflowClient(uri)
    assert sorted(m.step for m in client.get_metric_history(run_id, "val_loss")) == [1, 2, 3, 4, 5]
    assert client.get_run(run_id).info.status == "FAILED"
    # the new run's own journal is gone too: everything was sent
    assert list(journals.iterdir()) == []


def test_a_finished_run_leaves_no_journal(cli, tmp_path, tiny_overrides, tracking_uri):
    journals = tmp_path / "journal"
    code, _, err = cli(
        "train",
        "--tracking-uri",
        tracking_uri,
        *[a for o in tiny_overrides for a in ("-o", o)],
        "-o",
        "tracking.log_model=false",
        "-o",
        f"tracking.journal_dir={journals}",
    )
    assert code == 0, err
    assert journals.is_dir() and list(journals.iterdir()) == []


def test_an_unwritable_journal_dir_is_refused_before_the_run(
    cli, tmp_path, tiny_overrides, tracking_uri
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = cli(
        "train",
        "--tracking-uri",
        tracking_uri,
        *[a for o in tiny_overrides for a in ("-o", o)],
        "-o",
        f"tracking.journal_dir={blocker}",
    )
    assert (
        code == 2
        and err.strip() == f"-o: tracking.journal_dir: {blocker} is a file; name a directory"
    )
