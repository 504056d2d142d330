"""The MLflow UI, rendered by headless Chromium, shows a finished sweep: parent, children, report
artifacts.

Skipped where no Chromium is installed (`.ci/run` installs Debian's chromium).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest

from conftest import ROOT, mlflow_server
from textclf.tracking import saved_view

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium installed (apt-get install chromium)"
)


@pytest.fixture
def served_sweep(finished_sweep, tmp_path):
    """The session's finished 3-trial sweep, served by `mlflow server` on 127.0.0.1."""
    store = Path(finished_sweep["dir"]) / "mlflow.db"
    with mlflow_server(
        store, tmp_path / "server.log", Path(finished_sweep["dir"]) / "mlartifacts"
    ) as url:
        yield url, finished_sweep["tracking_uri"]


def render(url: str, profile) -> str:
    """The page's DOM after its scripts ran (virtual time lets the UI's API calls finish)."""
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=30000",
            "--window-size=1400,900",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.stdout


def render_until(url: str, profile, pattern: str, tries: int = 3) -> str:
    """render(), again while `pattern` is not in the DOM yet: on a loaded machine the UI's API
    calls can outlast the virtual-time budget (the chart then has no axes yet)."""
    for _ in range(tries - 1):
        page = render(url, profile)
        if re.search(pattern, page):
            return page
    return render(url, profile)


def test_the_ui_shows_the_parent_its_children_and_the_report(served_sweep, tmp_path):
    url, store = served_sweep
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("tiny-sweep").experiment_id
    runs = mlflow.search_runs([experiment], output_format="list")
    parent = next(r for r in runs if r.data.tags.get("textclf.role") == "sweep")
    child = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)

    table = render(f"{url}/#/experiments/{experiment}/runs", tmp_path / "profile")
    assert ">sweep<" in table  # the parent run, named after the study
    assert re.search(r"<strong>4</strong> matching runs", table)  # the parent and its 3 children

    child_page = render(
        f"{url}/#/experiments/{experiment}/runs/{child.info.run_id}", tmp_path / "profile"
    )
    assert "Parent run" in child_page and ">sweep<" in child_page

    artifacts = render(
        f"{url}/#/experiments/{experiment}/runs/{parent.info.run_id}/artifacts",
        tmp_path / "profile",
    )
    assert ">report<" in artifacts and "trials.csv" in artifacts


def test_the_saved_view_shows_the_trials_with_the_objective_the_varied_params_and_datasets(
    served_sweep, tmp_path
):
    """What `textclf ui` prints for a sweep (tracking/saved_view.py): the trials listed flat, best
    first, with the objective, the varied params and the Dataset column filled (the evaluation rows'
    fingerprints).

    Writes docs/mlflow-ui-runs.png with TEXTCLF_UPDATE_SCREENSHOTS=1.
    """
    url, store = served_sweep
    mlflow.set_tracking_uri(store)
    client = mlflow.MlflowClient()
    parent = client.get_run(
        mlflow.search_runs(
            search_all_experiments=True,
            filter_string="tags.`textclf.role` = 'sweep'",
            output_format="list",
        )[0].info.run_id
    )
    experiment = parent.info.experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    view = f"{url}/{saved_view.view_path(experiment, parent.data.tags[saved_view.VIEW_TAG])}"
    page = render(view, tmp_path / "profile")
    assert re.search(r"<strong>3</strong> matching runs", page), "the view lists the 3 trials"
    for child in children:
        assert html.escape(child.info.run_name) in page, child.info.run_name
    headers = column_headers(page)
    assert {"best_val_accuracy", "model.freeze", "train.learning_rate", "Dataset"} <= headers, (
        headers
    )
    # the Dataset cells name the data and the fingerprint digest of the rows each trial was scored
    # on
    complete = next(c for c in children if c.info.status == "FINISHED")
    digest = next(
        i.dataset.digest for i in complete.inputs.dataset_inputs if i.tags[0].value == "test"
    )
    assert f":test ({digest})" in page, "the Dataset column shows textclf's fingerprint"
    assert "shared view" in page  # MLflow says it opened the saved view
    screenshot(view, tmp_path / "profile", shots(tmp_path) / "mlflow-ui-runs.png")


def column_headers(page: str) -> set[str]:
    """The texts of the runs table's column headers (ag-grid header cells)."""
    cells = re.findall(r'role="columnheader".*?</div></div></div>', page, flags=re.S)
    return {html.unescape(t).strip() for cell in cells for t in re.findall(r">([^<>]+)<", cell)} - {
        ""
    }


def shots(tmp_path: Path) -> Path:
    return ROOT / "docs" if os.environ.get("TEXTCLF_UPDATE_SCREENSHOTS") else tmp_path


def screenshot(url: str, profile, path: Path) -> None:
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=30000",
            "--window-size=1800,800",
            "--hide-scrollbars",
            f"--screenshot={path}",
            url,
        ],
        capture_output=True,
        timeout=180,
    )
    assert path.stat().st_size > 10_000


def test_the_compare_view_plots_the_objective_against_the_varied_params(served_sweep, tmp_path):
    """What `textclf ui` prints as the compare view: the saved view's chart view.

    Its first chart is parallel coordinates of the varied params and the objective (MLflow's compare
    page picks its plot's metric itself: the first shared one, data.num_labels, which textclf cannot
    choose). Writes docs/mlflow-ui-compare.png with TEXTCLF_UPDATE_SCREENSHOTS=1.
    """
    url, store = served_sweep
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("tiny-sweep").experiment_id
    compare = f"{url}/{saved_view.routes(experiment)['compare']}"
    page = render_until(compare, tmp_path / "profile", r'<text [^>]*class="label">')
    # the sweep's own chart section, from the view
    assert "textclf sweep" in page and "shared view" in page
    # the parallel chart's axes (long names are cut on the axis; the full name is in its tooltip
    # text)
    axes = re.findall(r'<text [^>]*class="label">([^<]+)</text>', page)
    names = set(axes) | set(re.findall(r'<text fill="black">([^<]+)</text>', page))
    assert axes[0] == "model.freeze" and len(axes) == 3, axes
    assert {"model.freeze", "train.learning_rate", "best_val_accuracy"} <= names, names
    assert not [a for a in axes if a.startswith(("data.", "best_epoch", "trial."))]
    screenshot(compare, tmp_path / "profile", shots(tmp_path) / "mlflow-ui-compare.png")


@pytest.mark.slow
@pytest.mark.e2e
def test_after_the_readmes_quickstart_sweep_the_view_shows_its_trials(
    cli, assets, tmp_path, monkeypatch
):
    """The README's sweep (sweeps/quickstart.yaml: MiniLM-L6, 4 trials, about 3 minutes on 2 cores),
    then what `textclf ui` opens: the 4 trials with the objective, both varied params and the
    Dataset column holding the evaluation rows' fingerprints.

    Writes docs/mlflow-ui-quickstart.png with TEXTCLF_UPDATE_SCREENSHOTS=1.
    """
    # before the chdir: it may be relative
    monkeypatch.setenv("TEXTCLF_ASSETS", str(assets.resolve()))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("sweep", ROOT / "sweeps" / "quickstart.yaml")
    assert code == 0, err
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("quickstart-sweep").experiment_id
    routes = saved_view.routes(experiment)
    [parent] = client.search_runs([experiment], "tags.`textclf.role` = 'sweep'")
    trials = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(trials) == 4 and "compare" in routes
    with mlflow_server(
        tmp_path / "mlflow.db", tmp_path / "server.log", tmp_path / "mlartifacts"
    ) as url:
        page = render(f"{url}/{routes['sweep']}", tmp_path / "profile")
        assert re.search(r"<strong>4</strong> matching runs", page)
        headers = column_headers(page)
        assert {"best_val_accuracy", "model.freeze", "train.learning_rate", "Dataset"} <= headers, (
            headers
        )
        for trial in trials:
            digest = next(
                i.dataset.digest for i in trial.inputs.dataset_inputs if i.tags[0].value == "test"
            )
            assert f"imdb:test ({digest})" in page
        screenshot(
            f"{url}/{routes['sweep']}",
            tmp_path / "profile",
            shots(tmp_path) / "mlflow-ui-quickstart.png",
        )
