"""Training against a real `mlflow server` on 127.0.0.1 (artifacts proxied through the server)."""
import json

import mlflow
import pytest
from conftest import mlflow_server
from test_run import check_contract, experiment_of


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(root / "mlflow.db", root / "server.log", root / "artifacts") \
            as url:
        yield url


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
