"""Every run saves its per-row predictions, scores carry intervals, and `textclf compare` pairs two
runs on the same rows (or refuses runs scored on other rows with one line, exit 2)."""

from __future__ import annotations

import json
import os

import mlflow
import numpy as np
import pytest

from textclf.stats import intervals
from textclf.tracking import predictions


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, tiny_model):
    """Two runs on the same rows (other learning rates), each with two more training seeds, and one
    on other rows (data.seed): {name: run id}."""
    from conftest import sentiment_frame
    from textclf.config import load_config
    from textclf.run import train_run

    directory = tmp_path_factory.mktemp("verdicts")
    data = directory / "sentiment"
    data.mkdir()
    sentiment_frame(240, seed=1).to_parquet(data / "train.parquet")
    sentiment_frame(80, seed=2).to_parquet(data / "test.parquet")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    base = [
        f"model.name={tiny_model}",
        f"data.name={data}",
        "data.label_names=neg,pos",
        "data.max_length=32",
        "train.epochs=2",
        "train.batch_size=16",
        "train.warmup_ratio=0",
        "train.progress=false",
        "tracking.experiment=verdicts",
        "tracking.log_model=false",
        "tracking.log_figures=false",
    ]
    # a module fixture runs outside the per-test environment reset
    made, saved = (
        {},
        dict(os.environ),
    )
    try:
        for name, extra in (
            ("low", ["train.learning_rate=1e-4"]),
            ("high", ["train.learning_rate=5e-3"]),
            ("other_rows", ["train.learning_rate=5e-3", "data.seed=7"]),
            *(
                (f"{lr}_{seed}", [f"train.learning_rate={rate}", f"train.seed={seed}"])
                for lr, rate in (("low", "1e-4"), ("high", "5e-3"))
                for seed in (43, 44)
            ),
        ):
            made[name] = train_run(
                load_config(None, base + extra + [f"tracking.run_name={name}"]), uri
            ).run_id
    # MLflow exports the store as MLFLOW_TRACKING_URI: later tests' commands would log into it
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"uri": uri, "base": base, **made}


def test_a_run_saves_every_evaluated_row_and_its_metrics_come_from_them(three_runs):
    mlflow.set_tracking_uri(three_runs["uri"])
    run = mlflow.get_run(three_runs["high"])
    m = run.data.metrics
    val, test = predictions.load(run.info.run_id, "val"), predictions.load(run.info.run_id, "test")
    assert len(val) == int(run.data.metrics["data.val_rows"])
    assert len(test) == int(run.data.metrics["data.test_rows"])
    # the selected epoch's
    assert (val.prediction == val.label).mean() == pytest.approx(m["best_val_accuracy"])
    assert (test.prediction == test.label).mean() == pytest.approx(m["test_accuracy"])
    assert np.allclose(np.stack(test.probabilities.to_numpy()).sum(1), 1, atol=1e-5)
    for name, frame in (
        ("best_val_accuracy", val),
        ("test_accuracy", test),
    ):  # Wilson over these rows
        low, high = intervals.wilson(int((frame.prediction == frame.label).sum()), len(frame))
        assert (m[f"{name}_ci_low"], m[f"{name}_ci_high"]) == pytest.approx(
            (low, high)
        ) and high - low > 0.04
    assert m["test_f1_ci_low"] <= m["test_f1"] <= m["test_f1_ci_high"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"misclassified_val.json", "misclassified_test.json", "predictions"} <= artifacts
    table = json.loads(
        mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/misclassified_test.json")
    )
    assert table["columns"] == ["row", "text", "label", "prediction", "confidence"]
    assert len(table["data"]) == (test.prediction != test.label).sum() or len(table["data"]) == 50


def test_compare_pairs_two_runs_on_the_same_rows(cli, three_runs):
    code, out, err = cli(
        "compare",
        three_runs["low"],
        f"runs:/{three_runs['high']}",
        "--tracking-uri",
        three_runs["uri"],
        "--json",
        "--split",
        "test",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["rows"] == 80 and result["split"] == "test"
    accuracy = next(c for c in result["comparisons"] if c["metric"] == "accuracy")
    assert accuracy["difference"] == pytest.approx(accuracy["b"] - accuracy["a"])
    assert (
        accuracy["low"] <= accuracy["difference"] <= accuracy["high"]
        and 0 < accuracy["p_value"] <= 1
    )
    mlflow.set_tracking_uri(three_runs["uri"])
    assert accuracy["b"] == pytest.approx(
        mlflow.get_run(three_runs["high"]).data.metrics["test_accuracy"]
    )
    code, text, err = cli(
        "compare", three_runs["low"], three_runs["high"], "--tracking-uri", three_runs["uri"]
    )
    assert code == 0, err
    assert "B - A" in text and "p = " in text and "exact McNemar" in text and "verdict:" in text
    assert "val rows" in text and "choosing by test scores" not in text  # val is the default


def test_two_single_runs_get_the_model_question_and_how_to_ask_the_configuration_one(
    cli, three_runs
):
    code, out, err = cli(
        "compare",
        three_runs["low"],
        three_runs["high"],
        "--tracking-uri",
        three_runs["uri"],
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    verdict = result["verdict"]
    assert (
        verdict["kind"] == "models"
        and verdict["metric"] == "accuracy"
        and verdict["better"] in ("a", "b", None)
    )
    primary = next(c for c in result["comparisons"] if c["role"] == "primary")
    assert primary["metric"] == "accuracy" and verdict["p_value"] == primary["p_value"]
    assert "two trained models" in verdict["text"] and "--repeat-best" in verdict["text"]
    assert "train.seed" in verdict["text"] and "configuration B is better" not in verdict["text"]
    secondary = [c for c in result["comparisons"] if c["role"] == "secondary"]
    assert {c["metric"] for c in secondary} == {"f1", "loss"}
    assert all(c["p_holm"] >= c["p_value"] for c in secondary)


def test_seed_lists_ask_whether_configuration_b_is_better(cli, three_runs):
    lists = [
        ",".join(three_runs[n] for n in (lr, f"{lr}_43", f"{lr}_44")) for lr in ("low", "high")
    ]
    code, out, err = cli("compare", *lists, "--tracking-uri", three_runs["uri"], "--json")
    assert code == 0, err
    result = json.loads(out)
    verdict, primary = result["verdict"], result["comparisons"][0]
    assert verdict["kind"] == "configurations" and primary["role"] == "primary"
    assert primary["seeds_a"] == primary["seeds_b"] == 3 and primary["metric"] == "accuracy"
    assert primary["se"] ** 2 == pytest.approx(primary["seed_se"] ** 2 + primary["row_se"] ** 2)
    mlflow.set_tracking_uri(three_runs["uri"])
    means = [
        np.mean(
            [
                mlflow.get_run(three_runs[n]).data.metrics["best_val_accuracy"]
                for n in (lr, f"{lr}_43", f"{lr}_44")
            ]
        )
        for lr in ("low", "high")
    ]
    assert (primary["a"], primary["b"]) == pytest.approx(means)
    assert [r["seed"] for r in result["a"]["runs"]] == ["42", "43", "44"]
    code, text, err = cli("compare", *lists, "--tracking-uri", three_runs["uri"])
    assert (
        code == 0
        and "verdict: " in text
        and ("configuration B is better" in text or "configurations" in text)
    )
    assert "would be found with probability 0.8" in text


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (("low", "high"), ("low_43", "high_43"), "differ in train.learning_rate"),
        (("low",), ("high", "high_43"), "A has 1 run(s) and B 2"),
        (("low", "low"), ("high", "high_43"), "a run is given twice"),
    ],
)
def test_a_side_that_is_not_one_configuration_over_seeds_is_refused(
    cli, three_runs, a, b, expected
):
    sides = [",".join(three_runs[n] for n in side) for side in (a, b)]
    code, out, err = cli("compare", *sides, "--tracking-uri", three_runs["uri"])
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and expected in err


def test_compare_on_test_rows_says_they_are_for_reporting(cli, three_runs):
    code, text, _err = cli(
        "compare",
        three_runs["low"],
        three_runs["high"],
        "--tracking-uri",
        three_runs["uri"],
        "--split",
        "test",
    )
    assert code == 0 and "choosing by test scores leaves no unbiased estimate" in text


def test_compare_refuses_runs_scored_on_other_rows(cli, three_runs):
    code, out, err = cli(
        "compare", three_runs["high"], three_runs["other_rows"], "--tracking-uri", three_runs["uri"]
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "different rows" in err


def test_compare_names_a_reference_that_is_not_there(cli, three_runs):
    code, _, err = cli("compare", "0" * 32, three_runs["high"], "--tracking-uri", three_runs["uri"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("A: ")


def test_the_selected_epoch_is_named_for_what_selected_it(three_runs):
    """train.monitor=val_accuracy selects the epoch with the highest validation accuracy:
    best_val_loss is that epoch's validation loss (the kept weights': the per-row predictions it
    saved give it back), the run is tagged with its monitor, and runs of either monitor fall into
    different comparability groups (and never face each other for the champion)."""
    from textclf.config import load_config
    from textclf.reporting.tables import comparability_groups, select_runs
    from textclf.run import train_run
    from textclf.stats.rows import row_losses

    cfg = load_config(
        None,
        three_runs["base"]
        + [
            "train.learning_rate=5e-3",
            "train.epochs=3",
            "train.patience=0",
            "train.monitor=val_accuracy",
            "tracking.run_name=by_accuracy",
        ],
    )
    result = train_run(cfg, three_runs["uri"])
    history = {
        m.step: m.value for m in mlflow.MlflowClient().get_metric_history(result.run_id, "val_loss")
    }
    best = int(result.metrics["best_epoch"])
    assert result.metrics["best_val_loss"] == pytest.approx(history[best])
    assert row_losses(predictions.load(result.run_id, "val")).mean() == pytest.approx(
        history[best], rel=1e-4
    )
    accuracies = mlflow.MlflowClient().get_metric_history(result.run_id, "val_accuracy")
    assert result.metrics["best_val_accuracy"] == pytest.approx(max(m.value for m in accuracies))
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["textclf.monitor"] == "val_accuracy"
    assert mlflow.get_run(three_runs["high"]).data.tags["textclf.monitor"] == "val_loss"
    runs = select_runs("verdicts").runs.set_index(
        "tags.mlflow.runName"
        if "tags.mlflow.runName" in select_runs("verdicts").runs
        else "mlflow.runName"
    )
    groups = comparability_groups(runs.reset_index()).set_axis(runs.index)
    assert groups["by_accuracy"] != groups["high"] and groups["high"] == groups["low"]


def test_leaderboards_summaries_and_versions_show_intervals(three_runs):
    from textclf.reporting.tables import leaderboard, select_runs
    from textclf.tracking import registry

    mlflow.set_tracking_uri(three_runs["uri"])
    table = leaderboard(select_runs("verdicts"))
    for key in ("best_val_accuracy", "test_accuracy"):
        assert {f"{key}_ci_low", f"{key}_ci_high"} <= set(table.columns)
        assert (table[f"{key}_ci_low"] <= table[key]).all() and (
            table[key] <= table[f"{key}_ci_high"]
        ).all()
    m = mlflow.get_run(three_runs["high"]).data.metrics
    said = registry.describe(m, "best_val_accuracy", three_runs["high"])
    assert said.startswith(
        f"best_val_accuracy {m['best_val_accuracy']:.4f} [{m['best_val_accuracy_ci_low']:.4f}, "
    )
    assert "test_accuracy" in said and "95% intervals" in said


def test_a_version_registered_by_train_states_its_intervals(three_runs):
    """textclf train --register-as registers before the run's final metrics are logged: the
    description must come from the run's own final metrics, not from what the store holds at that
    moment (it held none)."""
    from textclf.config import load_config
    from textclf.run import train_run

    cfg = load_config(
        None,
        three_runs["base"]
        + [
            "train.learning_rate=5e-3",
            "tracking.log_model=true",
            "tracking.register_as=described",
            "tracking.run_name=described",
        ],
    )
    result = train_run(cfg, three_runs["uri"])
    m = result.metrics
    version = mlflow.MlflowClient().get_model_version("described", "1")
    assert version.description.startswith(
        f"best_val_accuracy {m['best_val_accuracy']:.4f} [{m['best_val_accuracy_ci_low']:.4f}, "
    )
    assert f"test_accuracy {m['test_accuracy']:.4f}" in version.description
