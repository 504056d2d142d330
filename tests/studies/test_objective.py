"""One objective everywhere: what the pruner sees, how trials rank, which objectives are allowed,
distinct proposals per worker, overrides that cannot silently replace a searched value, and exact
OOM retries."""

from __future__ import annotations

import optuna
import pytest

from conftest import needs_small_batches, write
from textclf.errors import InputError
from textclf.studies import pruning
from textclf.studies import strategies as sweep_strategies
from textclf.studies import study as sweep_study
from textclf.studies.spec import FixedTrial, trial_config
from textclf.studies.spec_file import load_spec


def spec_file(tmp_path, tiny_model, tiny_data, **tree):
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "tracking": {"experiment": "objective", "log_model": False},
    }
    write(tmp_path, base, "base.yaml")
    return write(tmp_path, {"base": "base.yaml", **tree})


def problems(path, overrides=()):
    with pytest.raises(InputError) as e:
        load_spec(path, overrides)
    return e.value.problems


def test_an_unknown_objective_metric_is_refused_before_any_trial(tmp_path, tiny_model, tiny_data):
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        objective="best_val_acc",
        study={"sampler": "random", "n_trials": 1},
        space={"train.learning_rate": {"loguniform": [1e-4, 1e-2]}},
    )
    [problem] = problems(path)
    assert (
        problem.startswith(f"{path}: objective.best_val_acc: not a metric textclf runs log")
        and "did you mean best_val_accuracy?" in problem
    )


@pytest.mark.parametrize("metric", ["test_accuracy", "test_f1"])
def test_selecting_on_the_test_set_is_refused(tmp_path, tiny_model, tiny_data, metric):
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        objective={metric: "maximize"},
        study={"sampler": "random", "n_trials": 1},
        space={"train.learning_rate": {"loguniform": [1e-4, 1e-2]}},
    )
    [problem] = problems(path)
    assert f"objective.{metric}: selecting on the test set is not allowed" in problem


def test_pruning_needs_an_objective_with_a_per_epoch_value(tmp_path, tiny_model, tiny_data):
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        objective="train_time_s",
        study={"sampler": "random", "n_trials": 2, "pruner": "median"},
        space={"train.learning_rate": {"loguniform": [1e-4, 1e-2]}},
    )
    [problem] = problems(path)
    assert "study.pruner: the objective train_time_s has no per-epoch value" in problem


def test_the_pruner_sees_the_running_objective():
    row = {"val_accuracy": 0.7, "val_loss": 0.4, "train_val_loss_ratio": 0.9}
    assert pruning.running_value("best_val_accuracy", row) == 0.7
    assert pruning.running_value("best_val_loss", row) == 0.4
    assert pruning.running_value("train_time_s", row) is None


def test_an_override_of_a_searched_key_is_an_error_naming_it(tmp_path, tiny_model, tiny_data):
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": "random", "n_trials": 2},
        space={
            "train.learning_rate": {"loguniform": [1e-4, 1e-2]},
            "train.batch_size": {"follows": "data.max_length", "map": {32: 8, 64: 4}},
        },
    )
    assert problems(path, ("train.learning_rate=1e-3",)) == [
        f"-o train.learning_rate=1e-3: the sweep {path} searches train.learning_rate; remove the "
        "override, or give a categorical new choices as a list, e.g. "
        "-o 'train.learning_rate=[a, b]'"
    ]
    assert any("train.batch_size" in p for p in problems(path, ("train.batch_size=2",)))
    cfg = trial_config(
        load_spec(path, ("data.max_length=64",)), FixedTrial({}), ("data.max_length=64",)
    )
    assert (cfg.data.max_length, cfg.train.batch_size) == (64, 4)  # follows sees the override


def test_pruned_and_failed_trials_rank_after_complete_ones():
    study = optuna.create_study(direction="maximize")
    lr = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for value, state in ((0.95, "PRUNED"), (0.80, "COMPLETE"), (None, "FAIL"), (0.85, "COMPLETE")):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.5},
                distributions=lr,
                value=value,
                state=optuna.trial.TrialState[state],
            )
        )
    board = sweep_study.trial_table(study)
    assert board["state"].tolist() == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL"]
    assert board.index.tolist() == [3, 1, 0, 2]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
@pytest.mark.parametrize("workers", [2, 3])
def test_workers_propose_distinct_trials(tmp_path, tiny_model, tiny_data, sampler, workers):
    """Workers of one study, as separate processes would: each with the sampler its worker index
    gets, asking in turn.

    The same seed in every worker proposed the same values in pairs.
    """
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": sampler, "n_trials": 9, "seed": 7},
        space={
            "train.learning_rate": {"loguniform": [1e-5, 1e-2]},
            "model.freeze": {"categorical": ["full", "top1", "top2"]},
        },
    )
    spec = load_spec(path)
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    studies = [
        optuna.load_study(
            study_name="s", storage=storage, sampler=sweep_strategies.make_sampler(spec, worker=i)
        )
        for i in range(workers)
    ]
    for n in range(9):
        study = studies[n % workers]
        trial = study.ask()
        trial_config(spec, trial)
        study.tell(trial, 0.5 + 0.01 * n)
    proposals = [tuple(sorted(t.params.items())) for t in studies[0].trials]
    assert len(set(proposals)) == len(proposals) == 9
    again = sweep_strategies.make_sampler(spec, worker=1)  # reproducible from the study seed
    assert type(again) is type(studies[1].sampler)


def test_an_oom_retry_keeps_the_effective_batch_exactly(
    cli, tmp_path, tiny_model, tiny_data, monkeypatch
):
    """batch 15: 15 = 5 x 3, not 7 x 2 = 14."""
    import mlflow

    needs_small_batches(monkeypatch, 7)
    monkeypatch.chdir(tmp_path)
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": "grid", "name": "oom15"},
        grid=[{"train.batch_size": 15}],
    )
    code, _, err = cli("sweep", path)
    assert code == 0, err
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [child] = [
        r
        for r in mlflow.search_runs(experiment_names=["objective"], output_format="list")
        if "mlflow.parentRunId" in r.data.tags
    ]
    params = child.data.params
    assert (params["train.batch_size"], params["train.grad_accum_steps"]) == ("5", "3")
    assert child.data.metrics["train.effective_batch_size"] == 15
    assert child.data.tags["textclf.oom_retry"] == "batch 15 x 1 -> 5 x 3 (effective batch 15 kept)"


@pytest.mark.parametrize(
    "message, retried",
    [
        # cuBLAS workspace
        (
            "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
            True,
        ),
        ("cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", True),
        # as memory-efficient attention raises it
        (
            "CUDA out of memory. Tried to allocate 1.50 GiB",
            True,
        ),
        # a bug, not memory: no retry
        (
            "mat1 and mat2 shapes cannot be multiplied (4x8 and 16x2)",
            False,
        ),
    ],
)
def test_cuda_allocation_failures_raised_as_runtime_errors_are_retried_too(
    cli, tmp_path, tiny_model, tiny_data, monkeypatch, message, retried
):
    import mlflow

    needs_small_batches(monkeypatch, 8, RuntimeError(message))
    monkeypatch.chdir(tmp_path)
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": "grid", "name": "oom-runtime"},
        grid=[{"train.batch_size": 16}],
    )
    code, _, err = cli("sweep", path, "-o", "train.epochs=1")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [child] = [
        r
        for r in mlflow.search_runs(experiment_names=["objective"], output_format="list")
        if "mlflow.parentRunId" in r.data.tags
    ]
    if retried:
        assert code == 0, err
        assert child.info.status == "FINISHED" and child.data.tags["textclf.oom_retry"].startswith(
            "batch 16 x 1"
        )
    else:
        assert child.info.status == "FAILED" and "textclf.oom_retry" not in child.data.tags
        assert "shapes cannot be multiplied" in child.data.tags["textclf.error"]


def test_a_sweep_whose_trials_keep_failing_stops_after_max_failures(
    cli, tmp_path, tiny_model, tiny_data, monkeypatch
):
    """peak_gpu_mem_mb is logged on a GPU only: on CPU every trial trains, then has no objective
    value.

    Each such trial is a failure of its own (counted, child run FAILED with the reason); three in a
    row stop the sweep with exit 1 instead of retraining forever.
    """
    import mlflow

    monkeypatch.chdir(tmp_path)
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        objective={"peak_gpu_mem_mb": "minimize"},
        study={"sampler": "random", "n_trials": 10, "name": "gpu-only"},
        space={"train.learning_rate": {"loguniform": [1e-4, 1e-2]}},
    )
    code, _, err = cli("sweep", path)
    assert code == 1 and "sweep stopped: 3 trials in a row failed (study.max_failures)" in err, err[
        -2000:
    ]
    study = optuna.load_study(study_name="gpu-only", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL"] * 3
    assert all("peak_gpu_mem_mb" in t.user_attrs["error"] for t in study.trials)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["objective"], output_format="list")
    [parent] = [r for r in runs if r.data.tags.get("textclf.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert parent.info.status == "FAILED" and len(children) == 3
    assert all(
        c.info.status == "FAILED" and "peak_gpu_mem_mb" in c.data.tags["textclf.error"]
        for c in children
    )


def test_a_list_override_gives_a_searched_categorical_new_choices(tmp_path, tiny_model, tiny_data):
    """The offline stand-ins of the notebook sweeps: -o 'model.name=[a, b]' swaps the hub models for
    local ones; the grid and every trial config follow, and the study gets its own name."""
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": "grid"},
        space={"model.name": {"categorical": ["distilbert-base-uncased", "bert-base-uncased"]}},
    )
    override = (f"model.name=[{tiny_model}, {tiny_model}/]",)
    spec = load_spec(path, override)
    assert spec.grid_space() == {"model.name": [str(tiny_model), f"{tiny_model}/"]}
    assert (
        spec.name.startswith(f"{load_spec(path).name}-choices-")
        and spec.name != load_spec(path).name
    )
    picked = trial_config(spec, FixedTrial({"model.name": f"{tiny_model}/"}), override)
    assert picked.model.name == f"{tiny_model}/"  # the trial's choice, not the override's text
    assert any("give a categorical new choices" in p for p in problems(path, ("model.name=[]",)))


RESUME = """
import sys
import optuna
from textclf.studies import storage as sweep_storage
from textclf.studies import strategies as sweep_strategies
from textclf.studies.spec_file import load_spec
from textclf.studies.spec import trial_config
spec, url, n = load_spec(sys.argv[1]), sys.argv[2], int(sys.argv[3])
# what each `textclf sweep` command does (sweep.run_worker)
study = sweep_storage.open_study(spec, url)
for _ in range(n):
    trial = study.ask()
    trial_config(spec, trial)
    study.tell(trial, 0.5)
"""


@pytest.mark.parametrize("sampler,first,then", [("random", 5, 3), ("tpe", 2, 2)])
def test_a_resumed_study_never_replays_its_proposals(
    tmp_path, tiny_model, tiny_data, sampler, first, then
):
    """Re-running the command (the documented way to resume; a restarted pod with the same worker
    index) is a separate process with the same worker index: its sampler seed derived from the
    study seed and the worker alone, random proposed trials 5, 6, 7 equal to 0, 2, 4 and TPE 2, 3
    equal to 0, 1."""
    import subprocess
    import sys

    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": sampler, "n_trials": 8, "seed": 7},
        space={
            "train.learning_rate": {"loguniform": [1e-5, 1e-2]},
            "train.weight_decay": {"uniform": [0.0, 0.1]},
        },
    )
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    for n in (first, then):
        done = subprocess.run(
            [sys.executable, "-c", RESUME, str(path), url, str(n)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    trials = optuna.load_study(study_name=load_spec(path).name, storage=url).trials
    proposals = [tuple(sorted(t.params.items())) for t in trials]
    assert len(proposals) == first + then and len(set(proposals)) == len(proposals), proposals


@pytest.mark.parametrize(
    "metric,expected",
    [
        ("best_val_accuracy", "maximize"),
        ("best_val_loss", "minimize"),
        ("train_time_s", "minimize"),
        ("peak_gpu_mem_mb", "minimize"),
        ("trainable_params", "minimize"),
        ("model_artifact_mb", "minimize"),
        ("train_samples_per_s", "maximize"),
        ("mfu", "maximize"),
    ],
)
def test_a_bare_objective_gets_its_natural_direction(
    tmp_path, tiny_model, tiny_data, metric, expected
):
    """Sizes and costs are minimised though their names do not end in loss or _s (main maximised GPU
    memory, trainable parameters and the model's size); rates end in _per_s and are maximised (main
    minimised them)."""
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": "random", "n_trials": 1},
        objective=metric,
        space={"train.learning_rate": {"loguniform": [1e-5, 1e-3]}},
    )
    assert load_spec(path).objectives == ((metric, expected),)


def test_the_loss_ratio_needs_a_stated_direction(tmp_path, tiny_model, tiny_data):
    path = spec_file(
        tmp_path,
        tiny_model,
        tiny_data,
        study={"sampler": "random", "n_trials": 1},
        objective="train_val_loss_ratio",
        space={"train.learning_rate": {"loguniform": [1e-5, 1e-3]}},
    )
    assert any("train_val_loss_ratio has no better end" in p for p in problems(path))


def test_the_pruner_never_stops_a_trial_after_its_last_epoch():
    """Pruning at the last epoch saves no compute and loses the trial's test metrics and model."""
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )
    trial = study.ask()
    pruning.report(trial, "best_val_accuracy", {"val_accuracy": 0.8, "val_loss": 0.4}, 3, last=3)
    with pytest.raises(optuna.TrialPruned):
        pruning.report(
            trial, "best_val_accuracy", {"val_accuracy": 0.8, "val_loss": 0.4}, 2, last=3
        )
