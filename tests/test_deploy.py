"""deploy/: the Kubernetes Job, the Slurm array and the image parse and run the right textclf
command with the right environment (no cluster needed): the command's options exist, secrets travel
as environment variables."""

from __future__ import annotations

import subprocess

import yaml

from conftest import ROOT
from textclf.cli import cli


def parses_as_a_sweep(args: list[str]) -> None:
    """`textclf ARGS` is a valid command line of the CLI (parsed by click, not run)."""
    assert args[0] == "sweep"
    command = cli.commands["sweep"]
    context = command.make_context("sweep", list(args[1:]))
    assert context.params["storage"] and "worker_index" in context.params


def test_the_kubernetes_job_runs_one_gpu_per_pod_on_one_study():
    job = yaml.safe_load((ROOT / "deploy" / "k8s-sweep-job.yaml").read_text())
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["parallelism"] == job["spec"]["completions"] >= 2
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    args = container["args"]
    parses_as_a_sweep([a.replace("$(JOB_COMPLETION_INDEX)", "3") for a in args])
    assert args[args.index("--worker-index") + 1] == "$(JOB_COMPLETION_INDEX)"
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"]["value"].startswith("http")
    for secret in (
        "OPTUNA_STORAGE",
        "MLFLOW_TRACKING_PASSWORD",
    ):  # from a Secret, never a literal or an argument
        assert "secretKeyRef" in env[secret]["valueFrom"]
    assert not [a for a in args if "password" in a.lower() or "://" in a]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["textclf"]' in dockerfile and container["image"].startswith("textclf")


def test_the_slurm_array_runs_one_gpu_per_task_on_one_study():
    script = ROOT / "deploy" / "slurm-sweep.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "#SBATCH --array=" in text and "#SBATCH --gres=gpu:1" in text
    [line] = [x for x in text.splitlines() if x.startswith("srun ")]
    args = (
        line.removeprefix("srun textclf ")
        .replace('"$spec"', "sweeps/imdb_search.yaml")
        .replace('"$OPTUNA_STORAGE"', "postgresql://db/optuna")
        .replace('"${SLURM_ARRAY_TASK_ID:-0}"', "2")
        .split()
    )
    parses_as_a_sweep(args)


def test_the_tls_proxy_example_fronts_a_loopback_server_with_logins():
    import re
    import shlex

    text = (ROOT / "deploy" / "Caddyfile").read_text()
    [command] = [
        line.removeprefix("#").strip()
        for line in text.splitlines()
        if line.startswith("#   textclf server")
    ]
    args = shlex.split(command)[2:]
    context = cli.commands["server"].make_context("server", args)  # parsed by click, not run
    assert context.params["auth"] and context.params["host"] == "127.0.0.1"
    [target] = re.findall(r"reverse_proxy (\S+)", text)
    assert target == f"127.0.0.1:{context.params['port']}"
    assert "server" in pyproject_extras() and any(
        d.startswith("mlflow[auth]") for d in pyproject_extras()["server"]
    )
    assert ".[postgres,server]" in (ROOT / "deploy" / "Dockerfile").read_text()


def pyproject_extras() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
