"""Training against a real `mlflow server` on 127.0.0.1 (artifacts proxied through the server)."""

import json
import sys

import mlflow
import pytest

from conftest import mlflow_server
from test_run import check_contract, experiment_of


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(root / "mlflow.db", root / "server.log", root / "artifacts") as url:
        yield url


def test_a_run_logged_to_a_real_server(cli, tiny_overrides, server):
    code, _, err = cli(
        "train", "--tracking-uri", server, *[a for o in tiny_overrides for a in ("-o", o)]
    )
    assert code == 0, err
    mlflow.set_tracking_uri(server)
    experiment = mlflow.get_experiment_by_name(experiment_of(tiny_overrides))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    [run] = mlflow.search_runs([experiment.experiment_id], output_format="list")
    check_contract(run, mlflow.MlflowClient(), epochs=3)
    # served by the server, not a local path
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    code, out, err = cli(
        "predict",
        "--model-uri",
        f"runs:/{run.info.run_id}/model",
        "--tracking-uri",
        server,
        "--json",
        "great superb film",
    )
    assert code == 0, err
    assert json.loads(out)["label"] == "pos"


def test_a_command_waits_for_a_tracking_server_that_is_still_starting(tmp_path, caplog):
    """Sweep workers especially start before (or while) the server restarts: they wait, with backoff
    and one line per attempt, up to tracking.outage_wait_s."""
    import threading
    import time

    from textclf.ops import server as servers
    from textclf.tracking import store

    port, started = servers.free_port(), {}
    url = f"http://127.0.0.1:{port}"

    def start_later():
        time.sleep(3)
        started["proc"], _ = servers.start(
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            tmp_path / "art",
            tmp_path / "server.log",
            port=port,
        )

    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        begin = time.monotonic()
        store.check_uri(url, f"--tracking-uri {url}", wait_s=120)
        waited = time.monotonic() - begin
    finally:
        starter.join()
        servers.stop(started["proc"])
    lines = [r.getMessage() for r in caplog.records if "not answering" in r.getMessage()]
    assert waited >= 3 and len(lines) >= 2
    assert (
        lines[0].startswith(f"tracking server {url} not answering (")
        and "attempt 1, next in 2 s" in lines[0]
    )
    assert all(
        "giving up after 120 s (tracking.outage_wait_s; Ctrl-C stops)" in line for line in lines
    )


def test_a_server_that_never_comes_is_one_line_after_the_wait(tmp_path):
    from textclf.errors import InputError
    from textclf.ops import server as servers
    from textclf.tracking import store

    url = f"http://127.0.0.1:{servers.free_port()}"
    with pytest.raises(InputError) as e:
        store.check_uri(url, f"--tracking-uri {url}", wait_s=5)
    [line] = e.value.problems
    assert line.startswith(
        f"--tracking-uri {url}: no MLflow tracking server answered GET {url}/health"
    )
    assert "for 2 s (tracking.outage_wait_s); start one (textclf server) or fix the URI" in line


def ui_lines(uri: str, experiment: str | None, cwd) -> tuple[dict[str, str], float, object]:
    """Start `textclf ui`; (its printed URLs by name, seconds until the last, the process)."""
    import subprocess
    import time

    chosen = ["--experiment", experiment] if experiment else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "textclf", "ui", "--tracking-uri", uri, *chosen, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )
    start, urls, line = time.monotonic(), {}, ""
    while "Ctrl-C stops" not in line and time.monotonic() - start < 90:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "textclf ui exited"
        if line.startswith("MLflow UI, "):
            name, url = line.removeprefix("MLflow UI, ").split(": ", 1)
            urls[name] = url.strip()
    return urls, time.monotonic() - start, proc


def stop_ui(proc) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) in (0, 130)


def test_textclf_ui_serves_the_projects_store_and_prints_the_experiments_url(tmp_path):
    """`textclf ui`: the MLflow UI on the project's store, on 127.0.0.1 and a free port; it prints
    the experiment's URL (which answers, in the model-training UI) and stops on Ctrl-C; the time it
    took is printed (the issue asks for 10 s; timings are not asserted in tests)."""
    import urllib.request

    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("ui-check")
    urls, took, proc = ui_lines(uri, "ui-check", tmp_path)
    try:
        url = urls["runs"]
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith(f"/#/experiments/{experiment}/runs?workflowType=machine_learning")
        with urllib.request.urlopen(url.split("#")[0], timeout=10) as page:
            assert page.status == 200
        print(f"MEASURED textclf ui printed {url} after {took:.1f} s")
    finally:
        stop_ui(proc)


def test_textclf_ui_prints_a_sweeps_saved_view_and_its_compare_view(finished_sweep, tmp_path):
    """For an experiment with a sweep: its saved view (tracking/saved_view.py) and that view's
    charts (the objective against the varied params), besides the runs table."""
    import mlflow

    urls, _, proc = ui_lines(finished_sweep["tracking_uri"], finished_sweep["experiment"], tmp_path)
    try:
        parent = finished_sweep["parent_run_id"]
        assert urls["sweep"].endswith(f"&viewStateShareKey={parent}")
        client = mlflow.MlflowClient(finished_sweep["tracking_uri"])
        [finished] = [
            r.info.run_id
            for r in client.search_runs(
                [client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
            )
            if r.info.status == "FINISHED"
        ]
        assert urls["compare"] == urls["sweep"] + "&compareRunsMode=CHART" and finished
        assert set(urls) == {"runs", "sweep", "compare"}
        # a plain experiment link opens MLflow's GenAI layout (docs/mlflow-ui.md): every link
        # printed names the model-training one
        assert all("workflowType=machine_learning" in url for url in urls.values())
    finally:
        stop_ui(proc)


def test_textclf_ui_without_an_experiment_prints_each_experiments_training_view(tmp_path):
    """No --experiment (or one that is not there): the experiment list, and each experiment's runs
    in the model-training layout (a link to the list alone would open experiments in the GenAI
    layout)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    ids = [mlflow.create_experiment(name) for name in ("first", "second")]
    urls, _, proc = ui_lines(uri, None, tmp_path)
    try:
        assert urls["experiments"].endswith("/#/experiments")
        for name, experiment in zip(("first", "second"), ids, strict=False):
            assert urls[f"runs of {name}"].endswith(
                f"/#/experiments/{experiment}/runs?workflowType=machine_learning"
            )
    finally:
        stop_ui(proc)
