"""The example notebook runs, top to bottom, against the real MiniLM model and IMDB sample
(nbclient), so it cannot rot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e


def test_the_example_notebook_runs(assets, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    notebook = nbformat.read(ROOT / "examples" / "textclf_in_a_notebook.ipynb", as_version=4)
    monkeypatch.setenv("TEXTCLF_ASSETS", str(Path(assets).resolve()))
    monkeypatch.setenv("TEXTCLF_EXAMPLE_ROWS", "240")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    # the kernel's working directory too: the report lands in tmp_path/reports
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    ]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "test_accuracy" in text and "val_loss" in text and "FINISHED" in text
    assert (tmp_path / "reports" / "notebook" / "leaderboard.csv").is_file()
