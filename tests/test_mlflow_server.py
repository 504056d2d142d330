"""Training against a real `mlflow server` on 127.0.0.1 (artifacts proxied through the server)."""
import json
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest
from test_run import check_contract, experiment_of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                             "--port", url.rsplit(":", 1)[1], "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                             "--artifacts-destination", str(root / "artifacts")], stdout=log, stderr=log)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"mlflow server did not start:\n{(root / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_run_logged_to_a_real_server(cli, tiny_overrides, server):
    code, _, err = cli("train", "--tracking-uri", server, *[a for o in tiny_overrides for a in ("-o", o)])
    assert code == 0, err
    mlflow.set_tracking_uri(server)
    experiment = mlflow.get_experiment_by_name(experiment_of(tiny_overrides))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    [run] = mlflow.search_runs([experiment.experiment_id], output_format="list")
    check_contract(run, mlflow.MlflowClient(), epochs=3)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server, not a local path
    code, out, err = cli("predict", "--model-uri", f"runs:/{run.info.run_id}/model", "--tracking-uri", server,
                         "--json", "great superb film")
    assert code == 0, err
    assert json.loads(out)["label"] == "pos"
