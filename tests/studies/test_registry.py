"""A sweep keeps the best trial's model only, registers it, and moves the alias `champion` only to a better
version; the registered model has a signature and an input example, serves over HTTP with `mlflow models
serve`, and `textclf predict` loads it by alias."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest
from conftest import write


def registered_sweep(cli, tmp_path, tiny_model, tiny_data, name: str, rates: list[float]) -> str:
    write(tmp_path, {"data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
                     "model": {"name": str(tiny_model)}, "train": {"epochs": 2, "progress": False},
                     "tracking": {"experiment": "registry"}}, "base.yaml")
    spec = write(tmp_path, {"base": "base.yaml", "study": {"name": name, "sampler": "grid"},
                            "space": {"train.learning_rate": {"categorical": rates}}}, f"{name}.yaml")
    code, _, err = cli("sweep", spec, "--register-as", "tiny-clf")
    assert code == 0, err
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_only_the_best_model_is_kept_and_it_becomes_the_champion(cli, tmp_path, tiny_model, tiny_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = registered_sweep(cli, tmp_path, tiny_model, tiny_data, "good", [1e-9, 5e-3, 2e-3])
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("registry").experiment_id
    kept = client.search_logged_models(experiment_ids=[experiment])
    champion = client.get_model_version_by_alias("tiny-clf", "champion")
    parent = next(r for r in mlflow.search_runs([experiment], output_format="list")
                  if r.data.tags.get("textclf.role") == "sweep")
    assert [m.model_id for m in kept] == [champion.source.removeprefix("models:/")]  # superseded ones deleted
    assert champion.run_id == parent.data.tags["best_run_id"]
    tags = champion.tags
    assert tags["textclf.study"] == "good" and tags["textclf.trial"] == parent.data.tags["best_trial"]
    assert tags["textclf.objective"] == "best_val_accuracy" and tags["textclf.direction"] == "maximize"
    assert float(tags["textclf.objective_value"]) == json.loads(parent.data.tags["best_value"])[0]
    assert tags["textclf.eval_fingerprint"] == parent.data.tags["textclf.eval_fingerprint"]
    assert "champion is now version 1" in parent.data.tags["textclf.registered"]
    models_dir = tmp_path / "mlartifacts" / "models"  # the experiment's artifact root holds models/<id>/
    assert len(list(models_dir.iterdir())) == 1  # the files of superseded models are gone too
    # a worse study on the same evaluation rows registers a version; the champion stays
    registered_sweep(cli, tmp_path, tiny_model, tiny_data, "bad", [1e-9])
    assert client.get_model_version_by_alias("tiny-clf", "champion").version == champion.version
    assert len(client.search_model_versions("name = 'tiny-clf'")) == 2
    code, _, err = cli("sweep", tmp_path / "good.yaml", "--register-as", "tiny-clf")  # a rerun adds nothing
    assert code == 0, err and len(client.search_model_versions("name = 'tiny-clf'")) == 2
    # the logged model says what it takes and gives
    info = mlflow.models.get_model_info("models:/tiny-clf@champion")
    assert [(c.name, str(c.type)) for c in info.signature.inputs.inputs] == [("text", "DataType.string")]
    assert [c.name for c in info.signature.outputs.inputs] == ["label", "score"]
    assert info.saved_input_example_info is not None
    code, out, err = cli("predict", "--model-uri", "models:/tiny-clf@champion", "--tracking-uri", uri,
                         "great superb film")
    assert code == 0 and out.split("\t")[0] in ("neg", "pos"), err


def test_a_registered_model_serves_over_http(cli, tmp_path, tiny_model, tiny_data, monkeypatch):
    """A real `mlflow models serve` on 127.0.0.1: two texts in, two labels with scores out; a malformed
    request gets MLflow's 400."""
    from textclf.tracking.server import free_port

    monkeypatch.chdir(tmp_path)
    uri = registered_sweep(cli, tmp_path, tiny_model, tiny_data, "served", [5e-3])
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri,  # `mlflow models serve` runs uvicorn from the caller's PATH
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/tiny-clf@champion",
                               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "serve.log", "w"))
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).close()
                break
            except (urllib.error.URLError, OSError):
                assert server.poll() is None and time.time() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
                time.sleep(0.5)
        body = {"dataframe_records": [{"text": "great superb film"}, {"text": "awful boring plot"}]}
        answer = json.loads(post(url, body))
        predictions = answer["predictions"]
        assert len(predictions) == 2
        assert all(p["label"] in ("neg", "pos") and 0 <= p["score"] <= 1 for p in predictions)
        with pytest.raises(urllib.error.HTTPError) as bad:
            post(url, {"not_a_format": [1, 2]})
        assert bad.value.code == 400
    finally:
        server.terminate()
        server.wait(timeout=30)


def post(url: str, body: dict) -> str:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()
