"""textclf from a notebook (the api/ package): the same validation, splits, fingerprints and
MLflow contract as the CLI, in-process on tiny models, returning results and DataFrames."""

from __future__ import annotations

import datasets
import mlflow
import pandas as pd
import pytest

import textclf
from conftest import sentiment_frame
from test_run import check_contract
from textclf.errors import InputError


def frames():
    """The rows of the tiny_data fixture (240 train, 80 test), as DataFrames."""
    return sentiment_frame(240, seed=1), sentiment_frame(80, seed=2)


def tiny_config(tiny_model, experiment):
    return {
        "data": {"label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {
            "epochs": 2,
            "batch_size": 16,
            "learning_rate": 5e-3,
            "warmup_ratio": 0,
            "progress": False,
        },
        "tracking": {"experiment": experiment},
    }


def test_train_on_dataframes_follows_the_run_contract(tiny_model, tracking_uri):
    train, test = frames()
    result = textclf.train(
        tiny_config(tiny_model, "api-train"),
        ["train.epochs=3"],
        train=train,
        test=test,
        tracking_uri=tracking_uri,
    )
    assert isinstance(result, textclf.TrainResult) and result.metrics["test_accuracy"] > 0.9
    assert list(result.history.index) == [1, 2, 3] and {"train_loss", "val_loss"} <= set(
        result.history
    )
    mlflow.set_tracking_uri(tracking_uri)
    run = mlflow.get_run(result.run_id)
    check_contract(run, mlflow.MlflowClient(), epochs=3)
    assert run.data.params["data.name"] == "dataframes" and run.data.metrics["data.test_rows"] == 80
    assert run.data.params["data.split"] == "provided"  # train + test: validation carved from train
    assert result.model_uri and mlflow.pyfunc.load_model(result.model_uri)


def test_train_alone_is_pooled_and_three_frames_are_used_as_given(tiny_model, tracking_uri):
    train, test = frames()
    pooled = textclf.train(
        tiny_config(tiny_model, "api-pool"),
        ["tracking.log_model=false"],
        train=train,
        tracking_uri=tracking_uri,
    )
    run = mlflow.get_run(pooled.run_id).data
    # 10% val, 10% test
    assert run.params["data.split"] == "pool" and run.metrics["data.train_rows"] == 192
    val = train.iloc[:30]
    given = textclf.train(
        tiny_config(tiny_model, "api-given"),
        ["tracking.log_model=false"],
        train=datasets.Dataset.from_pandas(train.iloc[30:], preserve_index=False),
        val=val,
        test=test,
        tracking_uri=tracking_uri,
    )
    counts = mlflow.get_run(given.run_id).data.metrics
    assert (counts["data.train_rows"], counts["data.val_rows"], counts["data.test_rows"]) == (
        210,
        30,
        80,
    )


def test_the_same_rows_give_the_same_fingerprint_as_files(tiny_model, tracking_uri, tmp_path):
    train, test = frames()
    train.to_parquet(tmp_path / "train.parquet")
    test.to_parquet(tmp_path / "test.parquet")
    cfg = tiny_config(tiny_model, "api-fingerprint")
    from_files = textclf.train(
        {**cfg, "data": {**cfg["data"], "name": str(tmp_path)}},
        ["train.epochs=1", "tracking.log_model=false"],
        tracking_uri=tracking_uri,
    )
    in_memory = textclf.train(
        cfg,
        ["train.epochs=1", "tracking.log_model=false"],
        train=train,
        test=test,
        tracking_uri=tracking_uri,
    )
    tags = [mlflow.get_run(r.run_id).data.tags for r in (from_files, in_memory)]
    assert tags[0]["textclf.split_fingerprint"] == tags[1]["textclf.split_fingerprint"]


def test_bad_frames_raise_the_cli_s_lines_before_any_run(tiny_model, tracking_uri):
    train, test = frames()
    with pytest.raises(InputError) as e:
        textclf.train(
            tiny_config(tiny_model, "api-bad"),
            train=train.rename(columns={"text": "review"}),
            test=test,
            tracking_uri=tracking_uri,
        )
    assert e.value.problems == [
        "the train DataFrame: column 'text' not found (columns: review, label); "
        "set data.text_column"
    ]
    with pytest.raises(InputError, match="give train="):
        textclf.train(tiny_config(tiny_model, "api-bad"), test=test, tracking_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    assert mlflow.get_experiment_by_name("api-bad") is None


def test_sweep_and_report_return_dataframes(tiny_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trials = textclf.sweep(tiny_sweep)
    assert isinstance(trials, pd.DataFrame) and sorted(trials["state"]) == [
        "COMPLETE",
        "FAIL",
        "PRUNED",
    ]
    assert trials["state"].iloc[0] == "COMPLETE"  # complete trials first
    board = textclf.report("sweep", output=str(tmp_path / "report"))
    assert (
        isinstance(board, pd.DataFrame)
        and len(board) == 3
        and (tmp_path / "report" / "report.md").exists()
    )


def test_the_sweep_api_passes_one_request_and_returns_its_outcome(monkeypatch):
    """textclf.sweep hands the sweep's options on as one SweepRequest and returns what run_sweep
    returns: it neither reads the spec again nor reopens the study afterwards (main did both)."""
    import textclf.studies.spec_file
    import textclf.studies.storage
    import textclf.studies.sweep
    from textclf.studies.request import SweepOutcome

    def must_not(*args, **kwargs):
        raise AssertionError("textclf.sweep read the spec or opened the study itself")

    taken = []
    table = pd.DataFrame({"state": ["COMPLETE"]})
    monkeypatch.setattr(
        textclf.studies.sweep,
        "run_sweep",
        lambda request: taken.append(request) or SweepOutcome(table, "printed"),
    )
    monkeypatch.setattr(textclf.studies.spec_file, "load_spec", must_not)
    monkeypatch.setattr(textclf.studies.storage, "open_study", must_not)
    trials = textclf.sweep(
        "sweeps/quickstart.yaml", ["train.epochs=1"], n_trials=2, register_as="x"
    )
    assert trials is table and trials.attrs["summary"] == "printed"
    [request] = taken
    assert (request.spec, request.n_trials, request.register_as) == (
        "sweeps/quickstart.yaml",
        2,
        "x",
    )
    assert request.config_overrides() == ("train.epochs=1", "tracking.register_as=x")
    assert textclf.sweep(request) is table and taken[-1] is request  # the CLI's way: one object


def test_ctrl_c_in_a_notebook_ends_the_run_killed(tiny_model, tracking_uri, monkeypatch):
    import textclf.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(textclf.run, "fit", interrupted)
    train, test = frames()
    with pytest.raises(KeyboardInterrupt):
        textclf.train(
            tiny_config(tiny_model, "api-ctrl-c"), train=train, test=test, tracking_uri=tracking_uri
        )
    mlflow.set_tracking_uri(tracking_uri)
    [run] = mlflow.search_runs(experiment_names=["api-ctrl-c"], output_format="list")
    assert run.info.status == "KILLED"
