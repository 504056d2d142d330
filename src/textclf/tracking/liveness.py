"""Liveness of runs: a heartbeat tag from a daemon thread, and reaping the runs whose process
died (kill -9, a lost machine) since MLflow cannot end them itself. A run that stays RUNNING with
a heartbeat 4 intervals old is ended FAILED by the next textclf start on its experiment (or
`textclf reap`)."""

from __future__ import annotations

import threading
import time

import mlflow
from mlflow.exceptions import MlflowException

HEARTBEAT, HEARTBEAT_S, REAPED = "textclf.heartbeat", "textclf.heartbeat_s", "no heartbeat"


def born(every_s: float) -> dict[str, str]:
    """Tags to create a run with: it carries a heartbeat from its first moment, so a process killed
    before its heartbeat thread first beats still leaves a run the reaper ends (CI saw one stay
    RUNNING for good)."""
    return {HEARTBEAT: f"{time.time():.0f}", HEARTBEAT_S: f"{every_s:g}"}


def heartbeat(run_id: str, every_s: float) -> threading.Event:
    """Tag the run `textclf.heartbeat` (unix seconds) every `every_s` from a daemon thread until the
    returned event is set."""
    stop, client = threading.Event(), mlflow.MlflowClient()

    def beat():
        missed = False
        while True:
            try:  # MLflow's own retries: this thread may wait; training does not
                client.set_tag(run_id, HEARTBEAT, f"{time.time():.0f}")
                if missed:  # back after an outage long enough for another process to have reaped us
                    run = client.get_run(run_id)
                    if run.info.status == "FAILED" and not stop.is_set():
                        client.update_run(run_id, status="RUNNING")
                        clear_reaped(run)
                missed = False
            except Exception:
                missed = True
            if stop.wait(every_s):
                return

    client.set_tag(run_id, HEARTBEAT_S, f"{every_s:g}")
    threading.Thread(target=beat, daemon=True, name="textclf-heartbeat").start()
    return stop


def reap(experiment: str, now: float | None = None) -> list[str]:
    """End FAILED every RUNNING run of `experiment` whose heartbeat is older than 4 of its
    intervals; returns their ids. Runs without a heartbeat tag (not made by textclf) are left
    alone."""
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    now, reaped = now or time.time(), []
    for run in client.search_runs(
        [found.experiment_id], "attributes.status = 'RUNNING'", max_results=1000
    ):
        last, every = run.data.tags.get(HEARTBEAT), run.data.tags.get(HEARTBEAT_S)
        if (
            last
            and every
            and now - float(last) > 4 * float(every)
            and end_dead(
                run.info.run_id,
                f"{REAPED} for {now - float(last):.0f} s: the process died (killed, or its "
                "machine was lost)",
            )
        ):
            reaped.append(run.info.run_id)
    return reaped


def end_dead(run_id: str, reason: str) -> bool:
    """A run whose process is gone: FAILED with the reason, if it is still RUNNING. False when it
    was not, or when another process reaping it at the same moment wrote its reason first."""
    client = mlflow.MlflowClient()
    if client.get_run(run_id).info.status != "RUNNING":
        return False
    try:
        client.set_tag(run_id, "textclf.error", reason)
    except MlflowException:
        # workers starting together all reap the same dead run; on SQLite the second insert of the
        # tag is a UNIQUE violation. The winner's reason stands; anything else is a real error.
        if "textclf.error" not in client.get_run(run_id).data.tags:
            raise
        # idempotent: the winner may not have got this far yet
        client.set_terminated(run_id, "FAILED")
        return False
    client.set_terminated(run_id, "FAILED")
    return True


def clear_reaped(run) -> None:
    """Undo `reap` on a run that is running after all (resumed, or back after an outage)."""
    if run.data.tags.get("textclf.error", "").startswith(REAPED):
        mlflow.MlflowClient().delete_tag(run.info.run_id, "textclf.error")
