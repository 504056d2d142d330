"""Security defaults: no code-executing loaders in src/, safetensors only, servers on 127.0.0.1, and
secrets never in logged params, tags or the saved config."""

import ast
import re

import mlflow
import pytest
from click.testing import CliRunner

from conftest import ROOT
from textclf.cli import cli
from textclf.ops import server

SRC = sorted((ROOT / "src" / "textclf").glob("*.py"))
# the builtins are matched only when called bare (model.eval() is a method, not the builtin)
FORBIDDEN = [
    r"(?<![\w.])eval\(",
    r"(?<![\w.])exec\(",
    r"yaml\.load\(",
    r"yaml\.unsafe_load",
    r"pickle\.loads?\(",
    r"trust_remote_code\s*=\s*True",
    r"torch\.load\(",
]


@pytest.mark.parametrize("pattern", FORBIDDEN)
def test_src_has_no_code_executing_loader(pattern):
    hits = [
        f"{path.name}:{n}"
        for path in SRC
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert hits == []


def test_every_yaml_read_is_safe_load_and_no_call_passes_trust_remote_code_true():
    """The same rules on the syntax tree, so line breaks and aliases cannot hide a call."""
    for path in SRC:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                assert name not in (
                    "eval",
                    "exec",
                    "yaml.load",
                    "pickle.load",
                    "pickle.loads",
                    "torch.load",
                ), f"{path.name}:{node.lineno}: {name}"
                for kw in node.keywords:
                    if kw.arg == "trust_remote_code":
                        assert isinstance(kw.value, ast.Constant) and kw.value.value is False, (
                            f"{path.name}:{node.lineno}"
                        )


def test_the_tracking_server_binds_loopback_unless_told():
    argv = server.command("sqlite:///x.db", ROOT / "art")
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    option = next(p for p in cli.commands["server"].params if p.name == "host")
    assert option.default == "127.0.0.1"
    # --help starts nothing
    shown = " ".join(CliRunner().invoke(cli, ["server", "--help"]).output.split())
    assert "[default: 127.0.0.1]" in shown


def test_only_safetensors_weights_load(cli, tiny_model, tiny_overrides, tracking_uri, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file

    # the same checkpoint, its weights as a pickle (pytorch_model.bin)
    pickled = tmp_path / "pickled-model"
    shutil.copytree(tiny_model, pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    assert (pickled / "pytorch_model.bin").exists() and not (pickled / "model.safetensors").exists()
    args = [a for o in [*tiny_overrides, f"model.name={pickled}"] for a in ("-o", o)]
    code, _, err = cli("train", "--tracking-uri", tracking_uri, *args)
    assert code == 2 and "only safetensors" in err, err


def test_secrets_in_the_environment_never_reach_params_tags_or_artifacts(
    cli, tiny_overrides, tracking_uri, monkeypatch
):
    secrets = {
        "HF_TOKEN": "hf_" + "s3cr3t" * 6,
        "MLFLOW_TRACKING_PASSWORD": "hunter2-" + "x" * 12,
        "AWS_SECRET_ACCESS_KEY": "aws-" + "y" * 30,
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    args = [
        a
        for o in [*tiny_overrides, "train.epochs=1", "tracking.log_model=false"]
        for a in ("-o", o)
    ]
    code, _, err = cli("train", "--tracking-uri", tracking_uri, *args)
    assert code == 0, err
    mlflow.set_tracking_uri(tracking_uri)
    [run] = mlflow.search_runs(
        experiment_names=[tiny_overrides[-1].split("=", 1)[1]], output_format="list"
    )
    logged = " ".join(
        [
            *run.data.params.values(),
            *run.data.tags.values(),
            mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.yaml"),
        ]
    )
    assert not [key for key, value in secrets.items() if value in logged]
