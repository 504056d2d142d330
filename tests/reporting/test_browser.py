"""The MLflow UI, rendered by headless Chromium, shows a finished sweep: parent, children, report artifacts.

Skipped where no Chromium is installed (`.ci/run` installs Debian's chromium)."""
from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest
from conftest import ROOT, mlflow_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")


@pytest.fixture
def served_sweep(finished_sweep, tmp_path):
    """The session's finished 3-trial sweep, served by `mlflow server` on 127.0.0.1."""
    store = Path(finished_sweep["dir"]) / "mlflow.db"
    with mlflow_server(store, tmp_path / "server.log", Path(finished_sweep["dir"]) / "mlartifacts") as url:
        yield url, finished_sweep["tracking_uri"]


def render(url: str, profile) -> str:
    """The page's DOM after its scripts ran (virtual time lets the UI's API calls finish)."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           f"--user-data-dir={profile}", "--virtual-time-budget=30000", "--window-size=1400,900",
                           "--dump-dom", url], capture_output=True, text=True, timeout=180)
    return done.stdout


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

    child_page = render(f"{url}/#/experiments/{experiment}/runs/{child.info.run_id}", tmp_path / "profile")
    assert "Parent run" in child_page and ">sweep<" in child_page

    artifacts = render(f"{url}/#/experiments/{experiment}/runs/{parent.info.run_id}/artifacts", tmp_path / "profile")
    assert ">report<" in artifacts and "trials.csv" in artifacts


def screenshot(url: str, profile, path: Path) -> None:
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    f"--user-data-dir={profile}", "--virtual-time-budget=30000", "--window-size=1400,900",
                    "--hide-scrollbars", f"--screenshot={path}", url], capture_output=True, timeout=180)


def test_the_compare_view_tells_the_trials_apart(served_sweep, tmp_path):
    """Three children of a sweep side by side: distinct names, the varied params and best_val_accuracy shown.
    Writes the runs-table screenshot of docs/mlflow-ui.md (to docs/ with TEXTCLF_UPDATE_SCREENSHOTS=1)."""
    import os

    url, store = served_sweep
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("tiny-sweep").experiment_id
    children = [r for r in mlflow.search_runs([experiment], output_format="list") if "mlflow.parentRunId" in r.data.tags]
    assert len({c.info.run_name for c in children}) == 3 and all(c.info.run_name.startswith("trial ") for c in children)
    ids = ",".join(f'"{c.info.run_id}"' for c in children)
    page = render(f"{url}/#/compare-runs?runs=[{ids}]&experiments=[\"{experiment}\"]", tmp_path / "profile")
    for child in children:
        assert html.escape(child.info.run_name) in page, child.info.run_name
    assert "train.learning_rate" in page and "model.freeze" in page and "best_val_accuracy" in page
    target = ROOT / "docs" if os.environ.get("TEXTCLF_UPDATE_SCREENSHOTS") else tmp_path
    screenshot(f"{url}/#/experiments/{experiment}/runs", tmp_path / "profile", target / "mlflow-ui-runs.png")
    screenshot(f"{url}/#/compare-runs?runs=[{ids}]&experiments=[\"{experiment}\"]", tmp_path / "profile",
               target / "mlflow-ui-compare.png")
    assert (target / "mlflow-ui-runs.png").stat().st_size > 10_000
