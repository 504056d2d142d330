"""The routes `textclf ui` prints for a sweep: the runs table, its saved view and the saved view's
chart view (the objective against the varied params); every route opens MLflow's model-training
layout."""

import json

import mlflow

from textclf.tracking import saved_view


def test_the_routes_open_the_training_layout_and_the_chart_view_of_the_saved_view(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("routes")
    parent = client.create_run(
        experiment,
        tags={"textclf.role": "sweep", "study.objective": json.dumps({"val_loss": "minimize"})},
    )
    pid = parent.info.run_id
    # no view saved yet
    assert saved_view.routes(experiment) == {"runs": saved_view.view_path(experiment)}
    client.set_tag(pid, saved_view.VIEW_TAG, pid)
    routes = saved_view.routes(experiment)
    view = f"#/experiments/{experiment}/runs?workflowType=machine_learning&viewStateShareKey={pid}"
    assert routes == {
        "runs": f"#/experiments/{experiment}/runs?workflowType=machine_learning",
        "sweep": view,
        "compare": view + "&compareRunsMode=CHART",
    }


def test_the_chart_view_opens_on_the_objective_against_the_varied_params():
    """MLflow's compare page picks its plot's metric itself (the first shared one, e.g.
    data.num_labels); the saved view's chart view is told: parallel coordinates of the objective
    over every varied param, first."""
    state = saved_view.charts(["best_val_accuracy"], ["model.freeze", "train.learning_rate"])
    first, bar = state["compareRunCharts"]
    assert first["type"] == "PARALLEL" and first["selectedMetrics"] == ["best_val_accuracy"]
    assert first["selectedParams"] == ["model.freeze", "train.learning_rate"]
    assert bar["type"] == "BAR" and bar["metricKey"] == "best_val_accuracy"
    assert {c["metricSectionId"] for c in state["compareRunCharts"]} == {
        s["uuid"] for s in state["compareRunSections"]
    }
