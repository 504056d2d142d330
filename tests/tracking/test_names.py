"""Readable, distinct run names (names.py): MLflow's generator draws from the `random` every run
seeds, so every run used to be called the same (`capable-auk-759`)."""

from __future__ import annotations

import mlflow

from conftest import write
from textclf.config import load_config
from textclf.tracking.names import run_name, trial_name, value_text


def test_names_read_like_the_settings():
    cfg = load_config(
        None, ["model.freeze=top2", "train.learning_rate=2e-5", "data.train_fraction=0.25"]
    )
    assert run_name(cfg) == "MiniLM-L6 imdb len128 lr2e-5 frac0.25 freeze=top2"
    assert (
        trial_name(7, cfg, ["train.learning_rate", "model.freeze"])
        == "trial 7 · lr=2e-5 freeze=top2"
    )
    assert trial_name(3, cfg, ["train.learning_rate"], seed=43) == "trial 3 · lr=2e-5 seed 43"
    assert [value_text(v) for v in (1e-4, 7.5e-6, 0.25, 128, ("a", "b"))] == [
        "1e-4",
        "7.5e-6",
        "0.25",
        "128",
        "a,b",
    ]


def test_two_runs_in_a_row_have_distinct_names_and_the_same_results(
    cli, tiny_overrides, tracking_uri
):
    args = [
        a
        for o in [*tiny_overrides, "train.epochs=1", "tracking.log_model=false"]
        for a in ("-o", o)
    ]
    for _ in range(2):
        code, _, err = cli("train", "--tracking-uri", tracking_uri, *args)
        assert code == 0, err
    mlflow.set_tracking_uri(tracking_uri)
    experiment = next(
        o.split("=", 1)[1] for o in tiny_overrides if o.startswith("tracking.experiment=")
    )
    first, second = sorted(
        mlflow.search_runs(experiment_names=[experiment], output_format="list"),
        key=lambda r: r.info.start_time,
    )
    assert first.info.run_name.startswith("tiny-bert0 sentiment len32 lr5e-3")
    assert second.info.run_name == first.info.run_name + " #2"
    # seeding as before
    assert first.data.metrics["best_val_loss"] == second.data.metrics["best_val_loss"]


def test_a_sweep_names_its_parent_after_the_study_and_children_after_what_they_vary(
    cli, tiny_model, tiny_data, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        {
            "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
            "model": {"name": str(tiny_model)},
            "train": {"epochs": 1, "progress": False},
            "tracking": {"experiment": "named", "log_model": False},
        },
        "base.yaml",
    )
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"name": "named-study", "sampler": "grid"},
            "space": {
                "train.learning_rate": {"categorical": [5e-3, 1e-3]},
                "model.freeze": {"categorical": ["full", "top1"]},
            },
        },
    )
    code, _, err = cli("sweep", spec)
    assert code == 0, err
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["named"], output_format="list")
    [parent] = [r for r in runs if r.data.tags.get("textclf.role") == "sweep"]
    children = {r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert parent.info.run_name == "named-study"
    # the spec file lists model.freeze first (YAML keys sorted); grid points in that order
    assert children == {
        f"trial {n} · freeze={f} lr={lr}"
        for n, (f, lr) in enumerate(
            [("full", "5e-3"), ("full", "1e-3"), ("top1", "5e-3"), ("top1", "1e-3")]
        )
    }
