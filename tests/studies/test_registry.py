"""A sweep keeps the best trial's model only, registers it, and moves the alias `champion` only to a
better version; the registered model has a signature and an input example, serves over HTTP with
`mlflow models serve`, and `textclf predict` loads it by alias."""

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
import numpy as np
import pytest

from conftest import write


def registered_sweep(cli, tmp_path, tiny_model, tiny_data, name: str, rates: list[float]) -> str:
    write(
        tmp_path,
        {
            "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
            "model": {"name": str(tiny_model)},
            "train": {"epochs": 2, "progress": False},
            "tracking": {"experiment": "registry"},
        },
        "base.yaml",
    )
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"name": name, "sampler": "grid"},
            "space": {"train.learning_rate": {"categorical": rates}},
        },
        f"{name}.yaml",
    )
    code, _, err = cli("sweep", spec, "--register-as", "tiny-clf")
    assert code == 0, err
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_only_the_best_model_is_kept_and_it_becomes_the_champion(
    cli, tmp_path, tiny_model, tiny_data, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    uri = registered_sweep(cli, tmp_path, tiny_model, tiny_data, "good", [1e-9, 5e-3, 2e-3])
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("registry").experiment_id
    kept = client.search_logged_models(experiment_ids=[experiment])
    champion = client.get_model_version_by_alias("tiny-clf", "champion")
    parent = next(
        r
        for r in mlflow.search_runs([experiment], output_format="list")
        if r.data.tags.get("textclf.role") == "sweep"
    )
    # superseded ones deleted
    assert [m.model_id for m in kept] == [champion.source.removeprefix("models:/")]
    assert champion.run_id == parent.data.tags["best_run_id"]
    tags = champion.tags
    assert (
        tags["textclf.study"] == "good" and tags["textclf.trial"] == parent.data.tags["best_trial"]
    )
    assert (
        tags["textclf.objective"] == "best_val_accuracy" and tags["textclf.direction"] == "maximize"
    )
    assert float(tags["textclf.objective_value"]) == json.loads(parent.data.tags["best_value"])[0]
    assert tags["textclf.eval_fingerprint"] == parent.data.tags["textclf.eval_fingerprint"]
    # the best of 3 trials on these rows: its test corrects for them
    assert tags["textclf.selected_from"] == "3"
    assert "champion is now version 1" in parent.data.tags["textclf.registered"]
    # the experiment's artifact root holds models/<id>/
    models_dir = tmp_path / "mlartifacts" / "models"
    assert len(list(models_dir.iterdir())) == 1  # the files of superseded models are gone too
    # a worse study on the same evaluation rows registers a version; the champion stays
    registered_sweep(cli, tmp_path, tiny_model, tiny_data, "bad", [1e-9])
    assert client.get_model_version_by_alias("tiny-clf", "champion").version == champion.version
    assert len(client.search_model_versions("name = 'tiny-clf'")) == 2
    # a rerun adds nothing
    code, _, err = cli("sweep", tmp_path / "good.yaml", "--register-as", "tiny-clf")
    assert code == 0, err and len(client.search_model_versions("name = 'tiny-clf'")) == 2
    # the logged model says what it takes and gives
    info = mlflow.models.get_model_info("models:/tiny-clf@champion")
    assert [(c.name, str(c.type)) for c in info.signature.inputs.inputs] == [
        ("text", "DataType.string")
    ]
    assert [c.name for c in info.signature.outputs.inputs] == ["label", "score"]
    assert info.saved_input_example_info is not None
    code, out, err = cli(
        "predict",
        "--model-uri",
        "models:/tiny-clf@champion",
        "--tracking-uri",
        uri,
        "great superb film",
    )
    assert code == 0 and out.split("\t")[0] in ("neg", "pos"), err


def test_a_registered_model_serves_over_http(cli, tmp_path, tiny_model, tiny_data, monkeypatch):
    """A real `mlflow models serve` on 127.0.0.1: two texts in, two labels with scores out; a
    malformed request gets MLflow's 400."""
    from textclf.ops.server import free_port

    monkeypatch.chdir(tmp_path)
    uri = registered_sweep(cli, tmp_path, tiny_model, tiny_data, "served", [5e-3])
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,  # `mlflow models serve` runs uvicorn from the caller's PATH
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/tiny-clf@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "w"),  # noqa: SIM115 (the server process writes it)
    )
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).close()
                break
            except (urllib.error.URLError, OSError):
                assert server.poll() is None and time.time() < deadline, (
                    tmp_path / "serve.log"
                ).read_text()[-3000:]
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
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()


def scored_version(
    client, name: str, correct: np.ndarray, fingerprint: str = "rows-a", selected_from: int = 1
) -> str:
    """A run whose saved validation predictions are right where `correct` says, registered as a
    version of `name` the way textclf tags one (objective best_val_accuracy)."""
    from textclf.stats.rows import predictions_frame
    from textclf.tracking.runs import ActiveRun

    labels = np.arange(len(correct)) % 2
    predicted = np.where(correct, labels, 1 - labels)
    probabilities = np.eye(2)[predicted] * 0.8 + 0.1
    texts = [f"review {i}" for i in range(len(correct))]
    with mlflow.start_run() as run:
        ActiveRun(run.info.run_id, None).log_predictions(
            {"val": predictions_frame(texts, labels, probabilities)}, {}
        )
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    return client.create_model_version(
        name,
        f"runs:/{run.info.run_id}/model",
        run_id=run.info.run_id,
        tags={
            "textclf.run_id": run.info.run_id,
            "textclf.objective": "best_val_accuracy",
            "textclf.direction": "maximize",
            "textclf.objective_value": repr(float(correct.mean())),
            "textclf.eval_fingerprint": fingerprint,
            "textclf.selected_from": str(selected_from),
        },
    ).version


def test_the_champion_moves_only_on_a_paired_win_on_the_same_rows(tmp_path):
    """200 validation rows: one more row right is noise (the old rule moved the alias on it); 30
    more rows right is a win (McNemar p < 0.05); a worse challenger never moves it; test=value keeps
    the old rule by choice."""
    from textclf.tracking import registry

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("promotion")
    client = mlflow.MlflowClient()
    rng = np.random.default_rng(0)
    base = rng.random(200) < 0.75
    first = scored_version(client, "clf", base)
    assert "champion is now version 1" in registry.promote("clf", first)
    one_more = base.copy()
    one_more[np.flatnonzero(~base)[0]] = True
    noise = scored_version(client, "clf", one_more)
    said = registry.promote("clf", noise)
    assert said.startswith("champion stays version 1") and "not better at 0.05" in said
    assert (
        "p = 0.5 (one-sided exact McNemar)"
        in client.get_model_version("clf", noise).tags["textclf.champion_test"]
    )
    worse = scored_version(client, "clf", base & (rng.random(200) < 0.8))
    assert registry.promote("clf", worse).startswith("champion stays version 1")
    better = base.copy()
    better[np.flatnonzero(~base)[:30]] = True
    win = scored_version(client, "clf", better)
    # the same win by the best of 50 trials on these rows: corrected for the selection (0.05 / 50),
    # it stays
    moderate = base.copy()
    moderate[np.flatnonzero(~base)[:9]] = True  # 9 rows fixed, none broken: one-sided p = 0.002
    selected = scored_version(client, "clf", moderate, selected_from=50)
    said = registry.promote("clf", selected)
    assert said.startswith("champion stays version 1") and "(0.05 / 50 candidates)" in said
    assert registry.promote("clf", scored_version(client, "clf", moderate)).startswith(
        "champion is now"
    )
    client.set_registered_model_alias("clf", "champion", first)
    assert (
        registry.promote("clf", win) == f"champion is now version {win} ({float(better.mean())!r})"
    )
    assert client.get_model_version_by_alias("clf", "champion").version == win
    other_rows = scored_version(client, "clf", better | True, fingerprint="rows-b")
    assert "other evaluation rows" in registry.promote("clf", other_rows)
    by_value = scored_version(
        client, "clf", better | (np.arange(200) == np.flatnonzero(~better)[0])
    )
    assert registry.promote("clf", by_value, test="value").startswith(
        f"champion is now version {by_value}"
    )


def test_a_grid_over_the_split_seed_registers_the_best_on_the_base_rows(
    cli, tmp_path, tiny_model, tiny_data, monkeypatch
):
    """Three data.seed values score on three sets of rows: the registered trial is the best of those
    on the base config's rows (the study's base config takes each varied key's first choice:
    data.seed 7), tagged with its own run's fingerprint; trials on other rows are not its rivals
    (main registered study.best_trial over all six)."""
    import optuna

    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        {
            "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
            "model": {"name": str(tiny_model)},
            "train": {"epochs": 1, "progress": False},
            "tracking": {"experiment": "seeds"},
        },
        "base.yaml",
    )
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"name": "seeds", "sampler": "grid"},
            "space": {
                "data.seed": {"categorical": [7, 42, 99]},
                "train.learning_rate": {"categorical": [1e-9, 5e-3]},
            },
        },
        "seeds.yaml",
    )
    code, _, err = cli("sweep", spec, "--register-as", "seed-clf")
    assert code == 0, err
    study = optuna.load_study(study_name="seeds", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    base = study.user_attrs["eval_fingerprint"]
    rows = {t.number: t.user_attrs["eval_fingerprint"] for t in study.trials}
    assert len(set(rows.values())) == 3  # each seed its own rows
    on_base = [t for t in study.trials if rows[t.number] == base]
    assert sorted(t.params["data.seed"] for t in on_base) == [7, 7]
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("seed-clf", "champion")
    winner = max(on_base, key=lambda t: (t.value, -t.number))
    assert champion.tags["textclf.trial"] == str(winner.number)
    run = client.get_run(champion.tags["textclf.run_id"])
    assert (
        champion.tags["textclf.eval_fingerprint"]
        == run.data.tags["textclf.eval_fingerprint"]
        == base
    )
    assert champion.tags["textclf.split_fingerprint"] == run.data.tags["textclf.split_fingerprint"]
