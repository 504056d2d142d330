"""MLproject, the click CLI, conda.yaml, pyproject.toml, README and .ci/run agree with each
other."""

import os
import re
import shlex
import subprocess
import sys

import click
import mlflow
import pytest
import tomllib
import yaml

from conftest import ROOT
from textclf.cli import cli

MLPROJECT = yaml.safe_load((ROOT / "MLproject").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def click_command(argv: list[str]) -> tuple[click.Command, list[str]]:
    """Walk `textclf a b ...` down the click groups to the command; returns it and its arguments."""
    assert argv[0] == "textclf", argv
    command, rest = cli, argv[1:]
    while isinstance(command, click.Group):
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


@pytest.mark.parametrize("entry", sorted(MLPROJECT["entry_points"]))
def test_every_mlproject_parameter_reaches_a_click_option(entry):
    spec = MLPROJECT["entry_points"][entry]
    params = spec.get("parameters", {})
    assert set(re.findall(r"{(\w+)}", spec["command"])) == set(params), (
        "declared but never passed (or reverse)"
    )
    numeric = {
        p for p, d in params.items() if isinstance(d, dict) and str(d.get("default", "")).isdigit()
    }
    marked = {p: str(100 + i) if p in numeric else f"VALUE-{p}" for i, p in enumerate(params)}
    command, args = click_command(shlex.split(spec["command"].format(**marked)))
    ctx = command.make_context(entry, args)  # parses exactly as the CLI would, without running
    received = {
        str(v)
        for value in ctx.params.values()
        for v in (value if isinstance(value, tuple) else (value,))
    }
    assert set(marked.values()) <= received, f"{entry}: some parameters reach no option"
    for name, p in params.items():
        default = p.get("default") if isinstance(p, dict) else None
        if name in ("config", "spec") and default:
            assert (ROOT / default).is_file(), f"{entry}.{name} default {default} does not exist"


def test_conda_env_installs_the_package_for_a_supported_python():
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip  # `mlflow run` imports textclf from the project itself
    python = next(
        d for d in conda["dependencies"] if isinstance(d, str) and d.startswith("python=")
    )
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, minimum.split(".")))
    assert MLPROJECT["conda_env"] == "conda.yaml"


def test_console_script_and_core_dependencies():
    assert PYPROJECT["project"]["scripts"]["textclf"] == "textclf.cli:main"
    deps = {re.split(r"[<>=!\[ ]", d)[0] for d in PYPROJECT["project"]["dependencies"]}
    assert {
        "mlflow",
        "torch",
        "transformers",
        "datasets",
        "optuna",
        "pandas",
        "click",
        "pyyaml",
    } <= deps


def readme_commands() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [
        line for block in blocks for line in block.splitlines() if line and not line.startswith("#")
    ]


def test_ci_runs_the_readme_test_command():
    test_command = next(c for c in readme_commands() if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_main_job_uses_a_shipped_config():
    main_job = next(c for c in readme_commands() if "textclf train" in c)
    config = re.search(r"--config (\S+)", main_job).group(1)
    assert (ROOT / config).is_file()


def test_mlflow_run_train_logs_into_the_run_it_created(tiny_overrides, tmp_path):
    """`mlflow run .

    -e train --env-manager local`: one run, FINISHED, holding textclf's params and model.
    """
    config = tmp_path / "tiny.yaml"
    tree: dict = {}
    for o in tiny_overrides:
        key, value = o.split("=", 1)
        section, sub = key.split(".")
        tree.setdefault(section, {})[sub] = value.split(",") if sub == "label_names" else value
    for section, sub in (("train", "epochs"), ("train", "batch_size"), ("data", "max_length")):
        tree[section][sub] = int(tree[section][sub])
    tree["train"]["learning_rate"] = float(tree["train"]["learning_rate"])
    tree["train"]["progress"] = False
    tree["train"]["warmup_ratio"] = 0.0
    config.write_text(yaml.safe_dump(tree))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,  # `textclf` from this venv, activated or not
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
    }
    mlflow_cli = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        str(ROOT),
        "--env-manager",
        "local",
        "--experiment-name",
        "mlproject",
    ]
    done = subprocess.run(
        [*mlflow_cli, "-e", "train", "-P", f"config={config}", "-P", "overrides=train.epochs=1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=["mlproject"], output_format="list")
    assert run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "1" and "test_accuracy" in run.data.metrics
    model_uri = f"runs:/{run.info.run_id}/model"
    done = subprocess.run(
        [
            *mlflow_cli,
            "-e",
            "predict",
            "-P",
            f"model_uri={model_uri}",
            "-P",
            "text=great superb film",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = mlflow.search_runs(experiment_names=["mlproject"], output_format="list")
    predict_run = next(r for r in runs if r.info.run_id != run.info.run_id)
    predictions = mlflow.artifacts.load_text(f"runs:/{predict_run.info.run_id}/predictions.jsonl")
    assert '"text": "great superb film"' in predictions
