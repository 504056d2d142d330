"""What the MLflow UI (3.17) shows for a sweep without a click: the parent row carries the best
trial's objective values and the evaluation datasets the trials were scored on, and the experiment
holds a saved view of the trials.

The view is MLflow's own shared view state: the UI's Share button stores the page's state as the
experiment tag `mlflow.sharedViewState.<key>` and opens it from `?viewStateShareKey=<key>`. Its
search facets (filter, sort) and column choices are kept; which runs are expanded is not (the UI
drops `runsExpanded` from shared state), so the view filters to the sweep's children, which then
list flat, best first. `workflowType=machine_learning` opens the model-training UI, not GenAI's."""

from __future__ import annotations

import json
import time
from typing import Any

import mlflow
from mlflow.entities import Metric

from textclf.stats.intervals import bounds

SHARE_TAG = "mlflow.sharedViewState."  # the UI's prefix for shared view state
VIEW_TAG = "textclf.view"  # on the parent: the share key of its view
BEST_OF = "textclf.best_of"  # on the parent: what its best values are (selected, optimistic)
TEST_SCORES = ("test_accuracy", "test_f1")  # the winner's, on the parent
SECTION = "textclf-sweep"  # the chart view's section holding the sweep's charts


def column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: attributes/params/metrics/tags + backquoted key."""
    return f"{kind}.`{key}`"


def view_path(experiment_id: str, key: str | None = None) -> str:
    """The UI route (after the server's URL) of an experiment's runs, or of a saved view."""
    query = "workflowType=machine_learning" + (f"&viewStateShareKey={key}" if key else "")
    return f"#/experiments/{experiment_id}/runs?{query}"


def show_sweep(
    parent_run_id: str,
    best_run_id: str | None,
    objectives: dict[str, str],
    varied: list[str],
    candidates: int = 1,
) -> str:
    """The parent's headline (show_best) and evaluation datasets, and the sweep's saved view;
    returns the view's UI route."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    experiment = parent.info.experiment_id
    if best_run_id:
        show_best(client, parent_run_id, best_run_id, list(objectives), candidates)
    _log_evaluation_inputs(client, parent, experiment)
    (metric, direction), *_ = objectives.items()
    chosen = [
        *(column("metrics", m) for m in objectives),
        *(column("params", k) for k in sorted(varied)),
    ]
    state = {
        "searchFilter": f"tags.mlflow.parentRunId = '{parent_run_id}'",
        "orderByKey": column("metrics", metric),
        "orderByAsc": direction == "minimize",
        "selectedColumns": [
            column("attributes", "Dataset"),
            *chosen,
            column("attributes", "Models"),
        ],
        # what was chosen and scored first, beside the run names: the UI's columns scroll
        "columnOrder": [*chosen, column("attributes", "Dataset")],
        **charts(list(objectives), sorted(varied)),
    }
    client.set_experiment_tag(experiment, SHARE_TAG + parent_run_id, json.dumps(state))
    client.set_tag(parent_run_id, VIEW_TAG, parent_run_id)
    return view_path(experiment, parent_run_id)


def show_best(
    client: mlflow.MlflowClient,
    parent_run_id: str,
    best_run_id: str,
    objectives: list[str],
    candidates: int,
) -> None:
    """The best trial's objective values on the parent, marked as the best of `candidates` trials on
    these validation rows (selected on them, so optimistic: no plain interval), and its test scores
    with their intervals (never selected on: the unbiased figures)."""
    scores = client.get_run(best_run_id).data.metrics
    keys = [*objectives, *(k for m in TEST_SCORES for k in (m, *bounds(m)))]
    now = int(time.time() * 1000)
    client.log_batch(
        parent_run_id, metrics=[Metric(k, scores[k], now, 0) for k in keys if k in scores]
    )
    tests = [m for m in TEST_SCORES if m in scores]
    unselected = (
        f"{' and '.join(tests)} were not selected on: read those, with their intervals"
        if tests
        else "no test scores"
    )
    said = (
        f"{', '.join(objectives)}: the best of {candidates} trials on these validation rows "
        f"(selected on them: optimistic, so no interval); {unselected}"
    )
    client.set_tag(parent_run_id, BEST_OF, said)


def charts(objectives: list[str], varied: list[str]) -> dict:
    """The chart view's first charts (the runs page with compareRunsMode=CHART): the objective
    against every varied param (parallel coordinates), then the objective per trial. MLflow's UI
    adds a chart per other metric after them."""
    section = {
        "uuid": SECTION,
        "name": "textclf sweep",
        "display": True,
        "isReordered": True,
        "deleted": False,
        "isGenerated": False,
    }
    common = {
        "metricSectionId": SECTION,
        "deleted": False,
        "isGenerated": False,
        "runsCountToCompare": 100,
    }
    parallel = {
        **common,
        "uuid": f"{SECTION}-parallel",
        "type": "PARALLEL",
        "displayName": f"{', '.join(objectives)} by {', '.join(varied)}",
        "selectedParams": varied,
        "selectedMetrics": objectives,
        "showAllRuns": True,
    }
    bars = [
        {**common, "uuid": f"{SECTION}-bar-{m}", "type": "BAR", "metricKey": m, "displayName": m}
        for m in objectives
    ]
    return {
        "compareRunCharts": [parallel, *bars],
        "compareRunSections": [section],
        "isAccordionReordered": True,
    }


def _log_evaluation_inputs(client: mlflow.MlflowClient, parent, experiment: str) -> None:
    """The children's validation and test datasets, each once (trials may differ in their training
    rows, e.g. data.train_fraction; what they were scored on defines comparability)."""

    def identity(item) -> tuple:
        return item.dataset.name, item.dataset.digest, tuple((t.key, t.value) for t in item.tags)

    def inputs(run) -> list:
        return run.inputs.dataset_inputs if run.inputs else []

    have = {identity(i) for i in inputs(parent)}
    found: dict[tuple, Any] = {}
    for child in client.search_runs(
        [experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    ):
        for item in inputs(child):
            contexts = {t.value for t in item.tags if t.key == "mlflow.data.context"}
            if contexts & {"val", "test"} and identity(item) not in have:
                found.setdefault(identity(item), item)
    if found:
        client.log_inputs(parent.info.run_id, datasets=list(found.values()))


def routes(experiment_id: str) -> dict[str, str]:
    """What `textclf ui` prints for an experiment, each in MLflow's model-training layout (a plain
    experiment link opens the GenAI one: docs/mlflow-ui.md): its runs, and for its newest sweep the
    saved view and the saved view's chart view (charts: the objective against the varied params)."""
    found = {"runs": view_path(experiment_id)}
    client = mlflow.MlflowClient()
    sweeps = client.search_runs(
        [experiment_id],
        "tags.`textclf.role` = 'sweep'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    if sweeps and VIEW_TAG in sweeps[0].data.tags:
        found["sweep"] = view_path(experiment_id, sweeps[0].data.tags[VIEW_TAG])
        found["compare"] = found["sweep"] + "&compareRunsMode=CHART"
    return found


def ui_routes(experiment: str | None) -> dict[str, str]:
    """`routes` of the experiment named `experiment`; without one (or with one not in the store),
    the experiment list and each of the newest 20 experiments' runs in the model-training layout
    (the list alone would open them in the GenAI layout)."""
    found = mlflow.get_experiment_by_name(experiment) if experiment else None
    if found is not None:
        return routes(found.experiment_id)
    every = mlflow.search_experiments(max_results=20, order_by=["last_update_time DESC"])
    return {
        "experiments": "#/experiments",
        **{f"runs of {e.name}": view_path(e.experiment_id) for e in every},
    }
