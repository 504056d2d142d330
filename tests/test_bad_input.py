"""Malformed input of every kind: rejected before any run or model work, with one line naming the
file/row/key and the fix, exit code 2, and no MLflow run created."""
import mlflow
import pytest
from conftest import sentiment_frame, write

GOOD_TRAIN = sentiment_frame(60, seed=1)


def data_dir(tmp_path, train: str | bytes, suffix: str = "csv"):
    """A dataset directory whose train file is `train` (raw text or bytes) and whose test file is fine."""
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    (path / f"train.{suffix}").write_bytes(train if isinstance(train, bytes) else train.encode())
    sentiment_frame(20, seed=2).to_csv(path / f"test.{suffix}", index=False) if suffix == "csv" else \
        sentiment_frame(20, seed=2).to_json(path / f"test.{suffix}", orient="records", lines=True)
    return path


def good_csv(**changes) -> str:
    frame = GOOD_TRAIN.copy()
    for row, (column, value) in changes.items():
        frame.loc[int(row.removeprefix("r")), column] = value
    return frame.to_csv(index=False)


BROKEN_JSONL = GOOD_TRAIN.to_json(orient="records", lines=True) + '{"text": "oops", \n'
LATIN1 = b"text,label\ncaf\xe9 au lait,1\n" + b"fine text here,0\n" * 30  # not UTF-8


def python_tag_yaml(tmp_path) -> str:
    path = tmp_path / "python_tag.yaml"
    path.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    return str(path)


# name -> (files and overrides for the case, text the one error line must contain)
CASES = {
    "empty file": (lambda p: [f"data.name={data_dir(p, '')}"], "train.csv: the file is empty"),
    "whitespace text": (lambda p: [f"data.name={data_dir(p, good_csv(r3=('text', '   ')))}"],
                        "train.csv: line 5: text is empty"),
    "missing label": (lambda p: [f"data.name={data_dir(p, good_csv(r5=('label', None)))}"], "train.csv: line 7: label is missing"),
    "out-of-range label": (lambda p: [f"data.name={data_dir(p, good_csv(r7=('label', 5)))}"], "label"),
    "bad encoding": (lambda p: [f"data.name={data_dir(p, LATIN1)}"], "train.csv: line 2: byte 0xe9 is not valid UTF-8"),
    "wrong columns": (lambda p: [f"data.name={data_dir(p, GOOD_TRAIN.rename(columns={'text': 'review'}).to_csv(index=False))}"],
                      "column 'text' not found"),
    "broken jsonl line": (lambda p: [f"data.name={data_dir(p, BROKEN_JSONL, 'jsonl')}"],
                          "train.jsonl"),
    "unknown config key": (lambda p: ["train.learnin_rate=1e-3"], "train.learnin_rate: unknown key; did you mean"),
    "invalid value": (lambda p: ["train.learning_rate=-1"], "train.learning_rate: must be in (0, 1)"),
    "python tag in YAML": (lambda p: ["--config", python_tag_yaml(p)], "python_tag.yaml"),
    "value too long for a param": (lambda p: ["tracking.run_name=" + "x" * 7000], "tracking.run_name: too long"),
    "token-looking value": (lambda p: ["tracking.run_name=hf_abcdefghijklmnopqrstuvwxyz0123"],
                            "looks like a secret"),
    "model limit exceeded": (lambda p: ["data.max_length=100"], "data.max_length: 100 is above the limit"),
    "no such model": (lambda p: ["model.name=./no/such/model"], "model.name: './no/such/model' does not exist"),
    "no such dataset": (lambda p: ["data.name=./no/such/data"], "data.name"),
    "config not a mapping": (lambda p: ["--config", str(write(p, ["a", "b"], "list.yaml"))], "list.yaml"),
}


def test_a_path_escape_in_a_study_name_is_refused(cli, tmp_path, tiny_sweep, tracking_uri):
    """The study name names reports/<name>: `../` could write outside it."""
    spec = tiny_sweep.read_text().replace("study:", "study:\n  name: ../../outside\n", 1)
    (tmp_path / "escape.yaml").write_text(spec)
    code, _, err = cli("sweep", tmp_path / "escape.yaml", "--storage", f"sqlite:///{tmp_path / 'o.db'}",
                       "--tracking-uri", tracking_uri)
    assert code == 2 and err.strip().splitlines() == [
        f"{tmp_path / 'escape.yaml'}: study.name: '../../outside' must be letters, digits, '.', '_' or '-' (it "
        f"names the report directory reports/<name>); no '/' or '..'"]
    assert not (tmp_path / "o.db").exists()  # no study was created


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_is_one_line_exit_2_and_no_run(case, cli, tmp_path, tiny_overrides, tracking_uri):
    make, expected = CASES[case]
    extra = make(tmp_path)
    args = [a for o in tiny_overrides for a in ("-o", o)]
    flags = extra if extra and extra[0] == "--config" else [a for o in extra for a in ("-o", o)]
    code, out, err = cli("train", "--tracking-uri", tracking_uri, *args, *flags)
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and expected in lines[0], lines
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name(tiny_overrides[-1].split("=", 1)[1])
    assert experiment is None or mlflow.search_runs([experiment.experiment_id], output_format="list") == []
