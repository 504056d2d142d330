"""The MLflow UI, rendered by headless Chromium, shows a finished sweep: parent, children, report artifacts.

Skipped where no Chromium is installed (`.ci/run` installs Debian's chromium)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest
from conftest import mlflow_server

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
