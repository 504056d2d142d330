"""sweeps/notebooks/: one sweep per course-notebook experiment, validated offline with the stand-ins
its header names, the 001 P1 grid equal to the notebook's six points, and a 3-class checkpoint
re-headed to 2 classes inside a real sweep (notebook 002's RoBERTa swap)."""

from __future__ import annotations

import re
import shlex

import mlflow
import pytest
from transformers import BertForSequenceClassification, BertTokenizer

from conftest import ROOT
from textclf.config import load_config
from textclf.model.build import build_classifier, load_backbone
from textclf.studies.spec import FixedTrial, trial_config
from textclf.studies.spec_file import load_spec

NOTEBOOKS = ROOT / "sweeps" / "notebooks"
SWEEPS = sorted(NOTEBOOKS.glob("*.yaml"))
FACTS = ROOT.parent / "shared" / "course-notebooks.md"


def test_one_sweep_per_notebook_experiment():
    assert [p.stem for p in SWEEPS] == [
        "001_p1_seqlen_lr",
        "001_p2_data_fraction",
        "001_p3_model_swap",
        "002_freeze_sets",
        "002_full_and_swap",
        "003_scratch_prompt_partial",
        "004_scratch_vs_pretrained",
    ]


def header_commands(path) -> tuple[str, list[str]]:
    """(the header's notebook command, the -o overrides of its offline command)."""
    lines = [
        line.removeprefix("#").strip()
        for line in path.read_text().splitlines()
        if line.startswith("#")
    ]
    text = " ".join(line.rstrip("\\").strip() for line in lines)
    commands = re.findall(
        rf"textclf sweep sweeps/notebooks/{path.name}((?: -o (?:\"[^\"]*\"|\S+))*)", text
    )
    assert len(commands) == 2, (
        f"{path.name}: the header needs the command and its offline equivalent"
    )
    args = shlex.split(commands[1])
    return commands[0], [a for a in args if a != "-o"]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_each_notebook_sweep_validates_as_shipped_and_with_its_offline_stand_ins(
    path, assets, monkeypatch
):
    notebook, offline = header_commands(path)
    assert notebook == ""  # the notebook command is the bare sweep
    spec = load_spec(path)
    assert spec.sampler == "grid" and spec.target_trials() == spec.grid_size() >= 2
    monkeypatch.chdir(ROOT)  # the offline MPNet path is relative to the repository
    standins = load_spec(path, tuple(offline))
    for i in range(standins.grid_size()):
        picks = (
            {"grid_point": i}
            if standins.grid
            else {k: v[i % len(v)] for k, v in standins.grid_space().items()}
        )
        cfg = trial_config(standins, FixedTrial(picks), tuple(offline))
        assert cfg.model.name in ("all-MiniLM-L6-v2", "minilm-3class") or "mpnet" in cfg.model.name
        if cfg.model.name == "all-MiniLM-L6-v2":
            # the mirror model takes every architecture override and max length
            load_backbone(cfg.model, cfg.data)


def notebook_p1_points() -> list[tuple[int, float, int]]:
    """The (MAX_LEN, LR, batch) rows of 001's P1 table in the facts file."""
    table = FACTS.read_text().split("**P1 (frac .25):**")[1].split("a1a=")[0]
    return [
        (int(m[0]), float(m[1]), int(m[2]))
        for m in re.findall(r"^\|(\d+)\|([\d.e-]+)\|(\d+)\|", table, re.M)
    ]


def test_the_001_p1_grid_is_the_notebooks_six_points():
    spec = load_spec(NOTEBOOKS / "001_p1_seqlen_lr.yaml")
    points = []
    for i in range(len(spec.grid)):
        cfg = trial_config(spec, FixedTrial({"grid_point": i}))
        points.append((cfg.data.max_length, cfg.train.learning_rate, cfg.train.batch_size))
        assert (
            cfg.data.split,
            cfg.data.train_fraction,
            cfg.train.optimizer,
            cfg.train.schedule,
            cfg.train.warmup_ratio,
            cfg.train.epochs,
        ) == ("subset", 0.25, "adam", "constant", 0.0, 3)
    assert points == [
        (128, 2e-5, 32),
        (128, 1e-5, 32),
        (256, 1e-5, 16),
        (256, 7.5e-6, 16),
        (512, 7.5e-6, 8),
        (512, 5e-6, 8),
    ]
    if FACTS.is_file():
        assert points == notebook_p1_points()


def test_003_encodes_the_notebooks_three_models():
    spec = load_spec(NOTEBOOKS / "003_scratch_prompt_partial.yaml")
    scratch, prompt, partial = (trial_config(spec, FixedTrial({"grid_point": i})) for i in range(3))
    assert scratch.model.init == "random" and "num_hidden_layers=12" in scratch.model.config
    assert (scratch.train.adam_beta2, scratch.train.adam_eps, scratch.train.epochs) == (
        0.98,
        1e-9,
        30,
    )
    assert (prompt.model.peft, prompt.model.prefix_length, prompt.train.epochs) == (
        "prompt",
        5,
        100,
    )
    assert (partial.model.head, partial.model.mlp_hidden, partial.model.head_dropout) == (
        "mlp",
        256,
        0.3,
    )
    assert (partial.train.monitor, partial.train.patience, partial.model.freeze) == (
        "val_accuracy",
        10,
        ("top2",),
    )
    assert {c.data.trec_parse for c in (scratch, prompt, partial)} == {"notebook"}


def test_a_3_class_checkpoint_is_re_headed_to_2_classes_in_the_002_sweep(
    cli, tiny_model, tiny_data, tmp_path, monkeypatch
):
    three = tmp_path / "three-class"
    BertForSequenceClassification.from_pretrained(tiny_model, num_labels=3).save_pretrained(three)
    BertTokenizer.from_pretrained(tiny_model).save_pretrained(three)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(
        "sweep",
        NOTEBOOKS / "002_full_and_swap.yaml",
        "-o",
        f"model.name=[{tiny_model}, {three}]",
        "-o",
        f"data.name={tiny_data}",
        "-o",
        "data.val_size=0.1",
        "-o",
        "data.test_size=null",
        "-o",
        "data.max_length=32",
        "-o",
        "train.epochs=1",
        "-o",
        "train.learning_rate=5e-3",
        "-o",
        "train.progress=false",
        "-o",
        "tracking.log_model=false",
    )
    assert code == 0, err
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["notebook-002-swap"], output_format="list")
    children = {r.data.params["model.name"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == {str(tiny_model), str(three)}
    assert all(
        r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics for r in children.values()
    )
    cfg = load_config(None, [f"model.name={three}", "data.max_length=32"])
    model = build_classifier(load_backbone(cfg.model, cfg.data), ("neg", "pos"), cfg.model)
    assert model.classifier.out_features == 2  # the 3-way layer replaced; the body's weights kept
    kept = (
        BertForSequenceClassification.from_pretrained(three)
        .bert.encoder.layer[0]
        .attention.self.query.weight
    )
    assert (model.bert.encoder.layer[0].attention.self.query.weight == kept).all()


def test_the_cpu_sized_script_runs_every_notebook_sweep_and_parses():
    import subprocess

    for script in ("cpu_sized.sh", "claims.sh"):
        subprocess.run(["bash", "-n", str(NOTEBOOKS / script)], check=True)
    text = (NOTEBOOKS / "cpu_sized.sh").read_text()
    assert {p.name for p in SWEEPS} == set(re.findall(r"\$nb/(\S+\.yaml)", text))
