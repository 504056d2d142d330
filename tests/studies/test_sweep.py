"""Sweeps: spec validation, the search-space function, and real studies on a tiny model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest

from conftest import ROOT, needs_small_batches, write
from textclf.errors import InputError
from textclf.studies.spec import FixedTrial, trial_config
from textclf.studies.spec_file import load_spec

SHIPPED = sorted((ROOT / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_sweep_validates_with_its_command_in_the_header(path):
    # checks every grid point, categorical choice and range end as a trial config
    spec = load_spec(path)
    header = path.read_text().splitlines()
    assert any(
        f"textclf sweep sweeps/{path.name}" in line for line in header if line.startswith("#")
    )
    assert spec.target_trials() or spec.timeout


def test_the_notebook_sweeps_are_shipped():
    names = {p.stem for p in SHIPPED}
    assert {
        "quickstart",
        "imdb_data_scaling",
        "imdb_model_swap",
        "imdb_freeze_sets",
        "imdb_search",
        "trec_heads",
    } <= names  # the notebooks' own grids: sweeps/notebooks/ (test_notebook_sweeps.py)


def test_follows_rule_picks_from_the_leader():
    spec = load_spec(ROOT / "sweeps" / "imdb_search.yaml")
    cfg = trial_config(spec, FixedTrial({"data.max_length": 512, "train.learning_rate": 3e-5}))
    assert (cfg.data.max_length, cfg.train.batch_size, cfg.train.learning_rate) == (512, 8, 3e-5)


def test_a_bad_spec_lists_every_problem_with_file_and_key(tmp_path):
    path = write(
        tmp_path,
        {
            "study": {"sampler": "bayes", "n_trails": 3},
            "objectiv": "x",
            "space": {
                "train.learning_rate": {"loguniform": [0, 1]},
                "model.freeze": {"categorical": ["full", "lots"]},
                "train.epoch": {"int": [1, 3]},
            },
        },
    )
    with pytest.raises(InputError) as e:
        load_spec(path)
    problems = e.value.problems
    assert f"{path}: objectiv: unknown key; did you mean objective?" in problems
    assert f"{path}: study.n_trails: unknown key; did you mean study.n_trials?" in problems
    assert f"{path}: study.sampler: must be one of grid, random, tpe, got 'bayes'" in problems
    assert any(
        p.startswith(f"{path}: space.train.learning_rate: loguniform needs [low, high]")
        for p in problems
    )
    assert f"{path}: study.n_trials: set n_trials or timeout for a bayes sampler" in problems
    assert len(problems) == 5  # trial configs are checked only once the spec itself is sound

    path = write(
        tmp_path,
        {
            "study": {"sampler": "random", "n_trials": 2},
            "space": {
                "model.freeze": {"categorical": ["full", "lots"]},
                "train.epoch": {"int": [1, 3]},
            },
        },
    )
    with pytest.raises(InputError) as e:
        load_spec(path)
    assert any("model.freeze: 'lots' is not a preset" in p for p in e.value.problems)
    assert any(
        "train.epoch: unknown key; did you mean train.epochs?" in p for p in e.value.problems
    )


def test_bad_spec_exits_2_before_any_study_or_run(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        {"study": {"sampler": "grid"}, "space": {"train.learning_rate": {"uniform": [0.1, 0.2]}}},
    )
    code, _, err = cli("sweep", path)
    assert code == 2 and "a grid takes categorical dimensions" in err
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "mlflow.db").exists()


def sweep_runs(uri: str, experiment: str = "tiny-sweep"):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    parents = [r for r in runs if r.data.tags.get("textclf.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_a_study_is_one_parent_with_one_child_per_trial_and_resumes(
    cli, tiny_sweep, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("sweep", tiny_sweep)
    assert code == 0, err
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    [parent], children = sweep_runs(uri)
    assert parent.info.status == "FINISHED" and len(children) == 3
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    by_trial = {int(c.data.params["trial.number"]): c for c in children}
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    states = {t.number: t.state.name for t in study.trials}
    assert sorted(states.values()) == ["COMPLETE", "FAIL", "PRUNED"]
    expected_status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
    for number, state in states.items():
        assert by_trial[number].info.status == expected_status[state]
        assert by_trial[number].data.tags["trial.state"] == state
    best = study.best_trial
    assert parent.data.tags["best_trial"] == str(best.number)
    assert parent.data.tags["best_run_id"] == by_trial[best.number].info.run_id
    # a complete child follows the train contract
    assert "test_accuracy" in by_trial[best.number].data.metrics
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "top9: the model has 2 transformer blocks" in failed.data.tags["textclf.error"]
    board = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/trials.csv").splitlines()
    assert len(board) == 4 and board[1].startswith(f"{best.number},COMPLETE")
    assert "optuna.load_study(study_name='sweep'" in out
    report = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.md", "report/leaderboard.csv", "report/loss_curves.png"} <= report

    code, _, err = cli("sweep", tiny_sweep)  # the same command again: nothing to redo
    assert code == 0, err
    [again], children_again = sweep_runs(uri)
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    assert (
        len(children_again) == 3
        and len(optuna.load_study(study_name="sweep", storage=study._storage).trials) == 3
    )


def test_two_workers_share_one_study_without_duplicates(tiny_model, tiny_data, tmp_path):
    base = {
        "data": {"name": str(tiny_data), "label_names": ["neg", "pos"], "max_length": 32},
        "model": {"name": str(tiny_model)},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
        "tracking": {"experiment": "two-workers", "log_model": False},
    }
    write(tmp_path, base, "base.yaml")
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"sampler": "random", "n_trials": 4},
            "space": {"train.learning_rate": {"loguniform": [1e-3, 1e-2]}},
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "textclf", "sweep", str(spec), "--workers", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) >= 4
    rates = [t.params["train.learning_rate"] for t in study.trials]
    # each worker samples with its own seed: no pairs of equal trials
    assert len(set(rates)) == len(rates)
    [parent], children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "two-workers")
    assert len(children) == len(study.trials)
    assert sorted(int(c.data.params["trial.number"]) for c in children) == sorted(numbers)
    assert [(c.info.status, c.data.tags.get("textclf.error")) for c in children] == [
        ("FINISHED", None)
    ] * len(children)
    assert parent.info.status == "FINISHED"


def test_mlflow_run_sweep_makes_its_run_the_parent(tiny_sweep, tmp_path):
    """`mlflow run .

    -e sweep`: the run MLflow created is the parent; the children join its experiment.
    """
    import os

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(ROOT),
            "--env-manager",
            "local",
            "--experiment-name",
            "mlproject-sweep",
            "-e",
            "sweep",
            "-P",
            f"spec={tiny_sweep}",
            "-P",
            f"storage=sqlite:///{tmp_path / 'optuna.db'}",
            "-P",
            "overrides=train.epochs=2",
        ],
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,  # `textclf` from this venv, activated or not
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [parent], children = sweep_runs(uri, "mlproject-sweep")
    assert parent.info.status == "FINISHED" and parent.data.tags["textclf.study"] == "sweep"
    assert len(children) == 3 and {c.data.tags["mlflow.parentRunId"] for c in children} == {
        parent.info.run_id
    }
    assert (
        not sweep_runs(uri, "tiny-sweep")[1]
        if mlflow.get_experiment_by_name("tiny-sweep")
        else True
    )


def test_out_of_memory_is_retried_once_with_half_the_micro_batch(
    cli, tiny_sweep, tmp_path, monkeypatch
):
    """Same effective batch (8 x 2 instead of 16 x 1); the failed attempt's run is deleted: one
    child."""
    needs_small_batches(monkeypatch, 8)
    monkeypatch.chdir(tmp_path)
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"sampler": "grid", "name": "oom"},
            "grid": [{"train.learning_rate": 5e-3}],
        },
        "oom.yaml",
    )
    code, _, err = cli("sweep", spec)
    assert code == 0, err
    [_parent], children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    [child] = children
    assert child.info.status == "FINISHED" and child.data.tags["textclf.oom_retry"].startswith(
        "batch 16 x 1 -> 8 x 2"
    )
    assert (child.data.params["train.batch_size"], child.data.params["train.grad_accum_steps"]) == (
        "8",
        "2",
    )
    assert child.data.metrics["train.effective_batch_size"] == 16


def test_accuracy_and_time_as_two_objectives_give_a_pareto_front(
    cli, tiny_sweep, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    spec = write(
        tmp_path,
        {
            "base": "base.yaml",
            "study": {"sampler": "random", "n_trials": 2, "name": "pareto"},
            "objective": {"best_val_accuracy": "maximize", "train_time_s": "minimize"},
            "space": {"train.learning_rate": {"loguniform": [1e-3, 1e-2]}},
        },
        "pareto.yaml",
    )
    code, _out, err = cli("sweep", spec, "-o", "train.epochs=1")
    assert code == 0, err
    study = optuna.load_study(study_name="pareto", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.directions) == 2 and len(study.trials) == 2
    [parent], _ = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    front = {t.number for t in study.best_trials}
    assert set(map(int, parent.data.tags["pareto_trials"].split(","))) == front


def test_repeat_best_adds_seed_runs_and_the_report_measures_the_noise(
    cli, tiny_sweep, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("sweep", tiny_sweep, "--repeat-best", "1", "--seeds", "3")
    assert code == 0, err
    [parent], children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    repeats = [c for c in children if c.data.tags.get("textclf.repeat_of")]
    best = parent.data.tags["best_trial"]
    assert (
        len(children) == 5
        and len(repeats) == 2
        and {r.data.tags["textclf.repeat_of"] for r in repeats} == {best}
    )
    assert sorted(r.data.params["train.seed"] for r in repeats) == ["43", "44"]
    assert "## Seed noise" in mlflow.artifacts.load_text(
        f"runs:/{parent.info.run_id}/report/report.md"
    )
    # resumed: nothing new
    code, _, err = cli("sweep", tiny_sweep, "--repeat-best", "1", "--seeds", "3")
    assert code == 0, err
    assert len(sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")[1]) == 5


def test_each_trials_varied_values_are_tags_too(finished_sweep):
    """The MLflow runs table shows tags as columns: each child carries the values the sweep varied
    as `varied.<key>` tags, equal to its params (a grid point's keys included)."""
    client = mlflow.MlflowClient(finished_sweep["tracking_uri"])
    children = client.search_runs(
        [client.get_experiment_by_name(finished_sweep["experiment"]).experiment_id],
        f"tags.mlflow.parentRunId = '{finished_sweep['parent_run_id']}'",
    )
    assert len(children) == 3
    for child in children:  # the rejected trial (top9) too: its tags say what it tried
        varied = {
            k.removeprefix("varied."): v
            for k, v in child.data.tags.items()
            if k.startswith("varied.")
        }
        assert set(varied) == {"train.learning_rate", "model.freeze"}, child.data.tags
        # a rejected trial's params too are what it tried (main logged the base config's: lr 5e-3,
        # freeze full)
        assert all(child.data.params[k] == v for k, v in varied.items()), (
            varied,
            child.data.params,
        )
        if "textclf.error" in child.data.tags:
            assert child.data.params["model.freeze"] == "top9"


def test_the_parent_shows_the_best_value_the_evaluation_rows_and_a_saved_view(finished_sweep):
    """The runs table's parent row is not empty: the best trial's objective as a metric and the
    evaluation datasets the trials were scored on; the experiment holds a view MLflow's UI opens by
    its share key: the sweep's trials, best first, with the Dataset, the objective and the varied
    params as columns."""
    client = mlflow.MlflowClient(finished_sweep["tracking_uri"])
    parent = client.get_run(finished_sweep["parent_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    [complete] = [c for c in children if c.info.status == "FINISHED"]
    # the winner's validation score is the best of the trials on these rows: no plain interval (it
    # was selected on them), said so; its test scores were not selected on and come with theirs
    assert parent.data.metrics["best_val_accuracy"] == complete.data.metrics["best_val_accuracy"]
    assert "best_val_accuracy_ci_low" not in parent.data.metrics
    for key in (
        "test_accuracy",
        "test_accuracy_ci_low",
        "test_accuracy_ci_high",
        "test_f1",
        "test_f1_ci_low",
        "test_f1_ci_high",
    ):
        assert parent.data.metrics[key] == complete.data.metrics[key], key
    said = parent.data.tags["textclf.best_of"]
    assert (
        said.startswith("best_val_accuracy: the best of 2 trials on these validation rows")
        and "test_" in said
    )
    evaluated = {
        (i.tags[0].value, i.dataset.digest)
        for i in complete.inputs.dataset_inputs
        if i.tags[0].value != "train"
    }
    assert {(i.tags[0].value, i.dataset.digest) for i in parent.inputs.dataset_inputs} == evaluated
    assert {context for context, _ in evaluated} == {"val", "test"}

    key = parent.data.tags["textclf.view"]
    experiment = client.get_experiment(parent.info.experiment_id)
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{key}"])
    assert view["searchFilter"] == f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`best_val_accuracy`", False)
    assert view["selectedColumns"][:4] == [
        "attributes.`Dataset`",
        "metrics.`best_val_accuracy`",
        "params.`model.freeze`",
        "params.`train.learning_rate`",
    ]
    assert view["columnOrder"][0] == "metrics.`best_val_accuracy`"
    # the chart view opens on the objective against the varied params
    parallel = view["compareRunCharts"][0]
    assert parallel["type"] == "PARALLEL" and parallel["selectedMetrics"] == ["best_val_accuracy"]
    assert parallel["selectedParams"] == ["model.freeze", "train.learning_rate"]
    # the view's own search finds exactly the trials
    assert {
        r.info.run_id for r in client.search_runs([experiment.experiment_id], view["searchFilter"])
    } == {c.info.run_id for c in children}


def test_the_sweep_prints_each_score_with_its_interval_and_the_winner_as_best_of_n(finished_sweep):
    summary = finished_sweep["summary"]
    table = summary.split("\n\n")[0]
    number = r"[\d.e+-]+"
    assert "best_val_accuracy" in table and re.search(
        rf" {number} \[{number}, {number}\] ", table
    ), table
    assert re.search(
        rf"^best trial \d+ \(the best of 2 on these validation rows\): best_val_accuracy {number} "
        rf"\(selected on these rows: optimistic\); test_accuracy {number} \[{number}, {number}\]",
        summary,
        re.M,
    ), summary


def test_samplers_pruners_and_strategies_are_one_table_each():
    """A sampler name the spec accepts has its builder and its way of handing out trials, a
    pruner name its class: the names are the tables' keys (main listed them in spec.py apart from
    if-chains)."""
    import optuna

    from textclf.studies import strategies

    assert set(strategies.STRATEGIES) == set(strategies.SAMPLERS)
    for name, build in strategies.SAMPLERS.items():
        assert isinstance(build(0), optuna.samplers.BaseSampler), name
    for name, pruner in strategies.PRUNERS.items():
        # the one pruner with a required argument
        args = {"lower": 0.5} if name == "threshold" else {}
        assert isinstance(pruner(**args), optuna.pruners.BasePruner), name
    with pytest.raises(InputError, match=r"study\.sampler: must be one of grid, random, tpe"):
        load_spec_from({"study": {"sampler": "cmaes"}})


def load_spec_from(tree: dict):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        space = {"train.learning_rate": {"categorical": [1e-4]}}
        path.write_text(__import__("yaml").safe_dump({"space": space, **tree}))
        return load_spec(path, ())
