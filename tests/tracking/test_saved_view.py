"""The routes `textclf ui` prints for a sweep: its saved view, and the compare view of its best finished
trials by the study's objective and direction."""
import json

import mlflow
import pytest

from textclf.tracking import saved_view


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_compare_route_holds_the_best_three_finished_trials(tmp_path, direction):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("routes")
    parent = client.create_run(experiment, tags={"textclf.role": "sweep",
                                                 "study.objective": json.dumps({"val_loss": direction})})
    pid = parent.info.run_id
    values = {}
    for i, (value, status) in enumerate([(0.5, "FINISHED"), (0.1, "FINISHED"), (0.9, "FINISHED"),
                                         (0.3, "FINISHED"), (0.0, "FAILED")]):
        child = client.create_run(experiment, tags={"mlflow.parentRunId": pid}, run_name=f"trial {i}")
        client.log_metric(child.info.run_id, "val_loss", value)
        client.set_terminated(child.info.run_id, status)
        values[child.info.run_id] = value
    assert saved_view.routes(experiment) == {"runs": saved_view.view_path(experiment)}  # no view saved yet

    client.set_tag(pid, saved_view.VIEW_TAG, pid)
    routes = saved_view.routes(experiment)
    assert routes["sweep"] == f"#/experiments/{experiment}/runs?workflowType=machine_learning&viewStateShareKey={pid}"
    ids = json.loads(routes["compare"].split("runs=")[1].split("&")[0])
    expected = [0.1, 0.3, 0.5] if direction == "minimize" else [0.9, 0.5, 0.3]  # the FAILED 0.0 never
    assert [values[i] for i in ids] == expected
