"""A whole `textclf train` run on a tiny model: the logging contract, run statuses, predict round
trip."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import train_command
from textclf import run as run_mod
from textclf.config import load_config

CONTRACT_PARAMS = (
    "data.name",
    "data.train_fraction",
    "data.max_length",
    "data.seed",
    "model.name",
    "train.learning_rate",
    "train.batch_size",
    "train.epochs",
    "train.seed",
)
EPOCH_METRICS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "epoch_time_s",
    "epoch_train_val_loss_ratio",
    "learning_rate",
    "grad_norm",
)
FINAL_METRICS = (
    "best_epoch",
    "best_val_loss",
    "best_val_accuracy",
    "test_accuracy",
    "test_f1",
    "train_val_loss_ratio",
    "train_time_s",
    "total_time_s",
    "train_samples_per_s",
    "train_tokens_per_s",
    "trainable_params",
    "total_params",
)
ARTIFACTS = ("config.yaml", "confusion_matrix.json", "confusion_matrix.png", "curves.png")


def runs_of(uri: str, experiment: str) -> list:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def experiment_of(overrides: list[str]) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.startswith("tracking.experiment="))


def check_contract(run, client: mlflow.MlflowClient, epochs: int) -> None:
    """What every textclf run logs; later reports rely on these names."""
    assert run.info.status == "FINISHED"
    for key in CONTRACT_PARAMS:
        assert key in run.data.params, key
    for key in FINAL_METRICS:
        assert key in run.data.metrics, key
    for key in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(
            range(1, epochs + 1)
        )
    assert {"textclf.split_fingerprint", "textclf.git_commit", "textclf.device"} <= set(
        run.data.tags
    )
    assert set(ARTIFACTS) <= {a.path for a in client.list_artifacts(run.info.run_id)}
    per_epoch = client.get_metric_history(run.info.run_id, "epoch_train_val_loss_ratio")
    best = int(run.data.metrics["best_epoch"])
    # the best epoch's ratio
    assert run.data.metrics["train_val_loss_ratio"] == per_epoch[best - 1].value
    contexts = {i.tags[0].value for i in run.inputs.dataset_inputs}
    assert contexts == {"train", "val", "test"}


def test_train_logs_the_whole_contract(cli, tiny_overrides, tracking_uri, tmp_path):
    code, out, err = cli(
        "train", "--tracking-uri", tracking_uri, *[a for o in tiny_overrides for a in ("-o", o)]
    )
    assert code == 0, err
    [run] = runs_of(tracking_uri, experiment_of(tiny_overrides))
    client = mlflow.MlflowClient()
    check_contract(run, client, epochs=3)
    m = run.data.metrics
    assert m["test_accuracy"] > 0.9 and 0 < m["test_f1"] <= 1  # the synthetic task is easy
    assert (
        m["best_val_accuracy"]
        == client.get_metric_history(run.info.run_id, "val_accuracy")[
            int(m["best_epoch"]) - 1
        ].value
    )
    assert m["trainable_params"] == m["total_params"] > 0
    # throughput: padded slots >= real tokens; the first step comes after data, model and run setup
    assert 0 <= m["padding_fraction"] < 1
    assert m["train_padded_tokens_per_s"] == pytest.approx(
        m["train_tokens_per_s"] / (1 - m["padding_fraction"])
    )
    assert 0 < m["tokenize_time_s"] < m["time_to_first_step_s"] < m["total_time_s"]
    # utilisation: model FLOPs per real token (flops.py) x real tokens/s over the peak it logs
    assert (
        m["mfu"] == pytest.approx(m["model_tflops_per_s"] / m["peak_tflops"]) and 0 < m["mfu"] < 1
    )
    # params are what the user chose; what the data and model turned out to be are metrics and tags
    derived = {
        "model.attn_implementation",
        "data.label_map",
        "data.test_rows",
        "data.num_labels",
        "train.effective_batch_size",
    }
    assert not derived & set(run.data.params) and not [
        k for k in run.data.params if k.endswith("_dropped")
    ]
    assert run.data.tags["textclf.attn_implementation"] in ("sdpa", "eager")
    assert run.data.tags["textclf.label_map"] == "neg,pos"
    assert (m["data.test_rows"], m["data.num_labels"], m["train.effective_batch_size"]) == (
        80,
        2,
        16,
    )
    assert m["data.duplicate_rows_dropped"] >= 0
    # the learning rate each optimizer step applied, and each epoch's gradient norm
    steps = client.get_metric_history(run.info.run_id, "learning_rate_step")
    assert [s.step for s in steps] == list(range(1, len(steps) + 1)) and len(steps) >= 3
    # linear decay, no warmup
    assert steps[0].value == pytest.approx(5e-3) and steps[-1].value < steps[0].value
    assert len(client.get_metric_history(run.info.run_id, "grad_norm")) == 3
    # the saved config is the resolved one: it reloads to the same config
    saved = tmp_path / "config.yaml"
    saved.write_text(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.yaml"))
    assert load_config(saved) == load_config(None, tiny_overrides)
    confusion = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/confusion_matrix.json")
    assert confusion["labels"] == ["neg", "pos"] and np.sum(confusion["matrix"]) == 80
    assert f"run {run.info.run_id} FINISHED" in out
    # each score printed with its 95% interval over the evaluation rows, losses and the loss ratio
    # included
    for key in (
        "best_val_accuracy",
        "test_accuracy",
        "test_f1",
        "best_val_loss",
        "test_loss",
        "train_val_loss_ratio",
    ):
        low, high = m[f"{key}_ci_low"], m[f"{key}_ci_high"]
        # F1 1.0 on every resample
        assert low <= m[key] <= high and (low < high or key == "test_f1"), key
        assert re.search(rf"^  {key} +{m[key]:.4g} \[{low:.4g}, {high:.4g}\]$", out, re.M), (
            key,
            out,
        )


def test_predict_and_pyfunc_load_the_logged_model(cli, tiny_overrides, tracking_uri):
    code, _, err = cli(
        "train", "--tracking-uri", tracking_uri, *[a for o in tiny_overrides for a in ("-o", o)]
    )
    assert code == 0, err
    [run] = runs_of(tracking_uri, experiment_of(tiny_overrides))
    uri = f"runs:/{run.info.run_id}/model"
    texts = ["great superb film", "awful boring plot", "the movie was " + "bad " * 100]
    code, out, err = cli(
        "predict", "--model-uri", uri, "--tracking-uri", tracking_uri, "--json", *texts
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in rows] == ["pos", "neg", "neg"]
    pyfunc = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"text": texts}))
    assert list(pyfunc["label"]) == [r["label"] for r in rows]
    np.testing.assert_allclose(pyfunc["score"], [r["score"] for r in rows], rtol=1e-5)


def test_a_failing_run_ends_failed_with_the_reason(cli, tiny_overrides, tracking_uri, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(run_mod, "fit", explode)
    with pytest.raises(
        RuntimeError, match="disk on fire"
    ):  # the traceback reaches the user; exit status 1
        cli(
            "train", "--tracking-uri", tracking_uri, *[a for o in tiny_overrides for a in ("-o", o)]
        )
    [run] = runs_of(tracking_uri, experiment_of(tiny_overrides))
    assert run.info.status == "FAILED"
    assert run.data.tags["textclf.error"] == "RuntimeError: disk on fire"


def test_ctrl_c_ends_the_run_killed(cli, tiny_overrides, tracking_uri, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "fit", interrupt)
    code, _, err = cli(
        "train", "--tracking-uri", tracking_uri, *[a for o in tiny_overrides for a in ("-o", o)]
    )
    assert code == 130 and "interrupted" in err
    [run] = runs_of(tracking_uri, experiment_of(tiny_overrides))
    assert run.info.status == "KILLED"


def test_sigterm_ends_the_run_killed(tiny_overrides, tracking_uri):
    """A real process: SIGTERM mid-training exits 143 and leaves the run KILLED, not RUNNING."""
    overrides = [o for o in tiny_overrides if not o.startswith("train.epochs")] + [
        "train.epochs=500"
    ]
    proc = subprocess.Popen(
        train_command(tracking_uri, overrides),
        stderr=subprocess.PIPE,
        text=True,
    )
    experiment = experiment_of(overrides)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if any(r.info.status == "RUNNING" for r in _quiet_runs(tracking_uri, experiment)):
            break
        time.sleep(0.5)
    time.sleep(1.0)  # into the training loop
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    [run] = runs_of(tracking_uri, experiment)
    assert run.info.status == "KILLED"


def _quiet_runs(uri, experiment):
    try:
        return runs_of(uri, experiment)
    except mlflow.exceptions.MlflowException:
        return []


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.max_length=100", "data.max_length: 100 is above the limit of"),
        ("model.name=./no/such/model", "model.name: './no/such/model' does not exist"),
        ("data.label_names=neg", "data.label_names: must name at least 2 labels"),
        ("data.text_column=review", "column 'review' not found"),
    ],
)
def test_bad_input_exits_2_before_any_run(cli, tiny_overrides, tracking_uri, override, message):
    args = [a for o in [*tiny_overrides, override] for a in ("-o", o)]
    code, _, err = cli("train", "--tracking-uri", tracking_uri, *args)
    assert code == 2 and message in err, err
    assert _quiet_runs(tracking_uri, experiment_of(tiny_overrides)) == []


def test_bad_config_file_lists_every_problem(cli, tmp_path, tracking_uri):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  learning_rate: -1\n  epochs: 0\ndata:\n  nme: imdb\n")
    code, _, err = cli("train", "--config", path, "--tracking-uri", tracking_uri)
    assert code == 2
    assert err.strip().splitlines() == [
        f"{path}: data.nme: unknown key; did you mean data.name?",
        f"{path}: train.epochs: must be >= 1, got 0",
        f"{path}: train.learning_rate: must be in (0, 1), e.g. 5e-5, got -1.0",
    ]


def test_overrides_string_is_split_like_a_shell(cli, tiny_overrides, tracking_uri, tmp_path):
    path = tmp_path / "tiny.yaml"
    tree = {}
    for o in tiny_overrides:
        key, value = o.split("=", 1)
        section, sub = key.split(".")
        tree.setdefault(section, {})[sub] = (
            value.split(",") if sub == "label_names" else yaml.safe_load(value)
        )
    tree["model"]["name"] = str(tree["model"]["name"])
    tree["data"]["name"] = str(tree["data"]["name"])
    path.write_text(yaml.safe_dump(tree))
    code, _, err = cli(
        "train",
        "--config",
        path,
        "--tracking-uri",
        tracking_uri,
        "--overrides",
        "train.epochs=1 tracking.run_name='two words'",
    )
    assert code == 0, err
    [run] = runs_of(tracking_uri, tree["tracking"]["experiment"])
    assert run.data.params["train.epochs"] == "1" and run.info.run_name == "two words"


def test_python_m_textclf_is_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "textclf", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert out.returncode == 0 and "train" in out.stdout


def test_a_diverged_run_finishes_at_its_best_epoch_and_says_so(
    cli, tiny_overrides, tracking_uri, monkeypatch
):
    """Validation loss NaN in epoch 3: the run keeps epoch 2's weights, is tested, FINISHED,
    tagged."""
    import math

    import textclf.training.loop as train_mod
    from textclf.training.evaluate import Evaluation

    losses, real_evaluate = iter([0.6, 0.5, math.nan]), train_mod.evaluate

    def evaluate(model, loader, *a, **k):
        result = real_evaluate(model, loader, *a, **k)
        return (
            Evaluation(
                next(losses),
                result.accuracy,
                result.predictions,
                result.labels,
                result.probabilities,
            )
            if k.get("desc") == "val"
            else result
        )

    monkeypatch.setattr(train_mod, "evaluate", evaluate)
    code, _, err = cli(
        "train", "--tracking-uri", tracking_uri, *[a for o in tiny_overrides for a in ("-o", o)]
    )
    assert code == 0, err
    [run] = runs_of(tracking_uri, experiment_of(tiny_overrides))
    assert run.info.status == "FINISHED" and run.data.metrics["best_epoch"] == 2
    assert run.data.metrics["epochs_run"] == 2 and "test_accuracy" in run.data.metrics
    assert run.data.tags["textclf.diverged"] == "validation loss is nan after epoch 3; kept epoch 2"


def test_final_metrics_are_the_declared_list(cli, tiny_overrides, tracking_uri):
    """What sweep objectives are validated against (metrics.FINAL_METRICS) is what a run logs."""
    from textclf.training.summary import FINAL_METRICS, is_derived

    code, _, err = cli(
        "train", "--tracking-uri", tracking_uri, *[a for o in tiny_overrides for a in ("-o", o)]
    )
    assert code == 0, err
    [run] = runs_of(tracking_uri, experiment_of(tiny_overrides))
    client = mlflow.MlflowClient()
    per_epoch = {
        k for k in run.data.metrics if len(client.get_metric_history(run.info.run_id, k)) > 1
    }
    final = {k for k in run.data.metrics if k not in per_epoch and not is_derived(k)}
    # CPU, eager
    assert final == set(FINAL_METRICS) - {
        "peak_gpu_mem_mb",
        "model_artifact_mb",
        "compile_time_s",
    }


def test_dataset_inputs_carry_textclf_fingerprints_as_digests(
    tiny_overrides, tmp_path, monkeypatch
):
    """The runs table's Dataset column shows which runs share rows: each split's digest is textclf's
    fingerprint of its full rows (not MLflow's sample-based digest), equal for runs on the same
    rows, different for another data.seed."""
    from textclf.data import load_splits

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [
        *tiny_overrides,
        "train.epochs=1",
        "tracking.log_model=false",
        "tracking.log_figures=false",
    ]
    first, again, other = (
        run_mod.train_run(load_config(None, o), uri).run_id
        for o in (overrides, overrides, [*overrides, "data.seed=7"])
    )
    mlflow.set_tracking_uri(uri)
    digests = {
        run_id: {
            i.tags[0].value: i.dataset.digest for i in mlflow.get_run(run_id).inputs.dataset_inputs
        }
        for run_id in (first, again, other)
    }
    expected = load_splits(load_config(None, overrides).data).split_fingerprints()
    assert digests[first] == expected and set(expected) == {"train", "val", "test"}
    assert digests[again] == digests[first]
    assert digests[other]["val"] != digests[first]["val"]
    inputs = mlflow.get_run(first).inputs.dataset_inputs
    assert all(i.dataset.profile and json.loads(i.dataset.profile)["num_rows"] > 0 for i in inputs)


def test_a_run_logs_decoded_training_samples_to_check_its_tokenization(
    tiny_overrides, tmp_path, monkeypatch
):
    """samples.txt: the first 5 training inputs as the model sees them (special tokens, truncation
    at data.max_length), each with its label, as HF users check their tokenization."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = [
        *tiny_overrides,
        "train.epochs=1",
        "tracking.log_model=false",
        "tracking.log_figures=false",
    ]
    run_id = run_mod.train_run(load_config(None, overrides), uri).run_id
    mlflow.set_tracking_uri(uri)
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/samples.txt")
    lines = text.strip().splitlines()
    assert len(lines) == 5
    for line in lines:
        label, tokens, decoded = line.split("\t")
        assert label in ("neg", "pos") and decoded.startswith("[CLS]") and decoded.endswith("[SEP]")
        assert 3 <= int(tokens) <= 32  # at most data.max_length tokens
