from pathlib import Path

import pytest
import yaml

from textclf.config import Config, TrainConfig, dump_yaml, load_config
from textclf.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def problems_of(path=None, overrides=()) -> list[str]:
    with pytest.raises(InputError) as e:
        load_config(path, overrides)
    return e.value.problems


def test_defaults_without_a_file():
    cfg = load_config()
    assert cfg == Config()
    assert (
        cfg.data.name == "imdb" and cfg.train.learning_rate == 5e-5 and cfg.data.split == "provided"
    )


def test_yaml_is_a_delta_and_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "train:\n  epochs: 7\n  learning_rate: 3e-5\ndata:\n  label_names: [neg, pos]\n"
    )
    cfg = load_config(path, ["train.epochs=2", "data.max_length=256", "data.test_size=null"])
    assert cfg.train.epochs == 2  # override beats file
    assert cfg.train.learning_rate == 3e-5  # YAML reads "3e-5" as a string; coerced to float
    assert cfg.data.max_length == 256 and cfg.data.test_size is None
    assert cfg.data.label_names == ("neg", "pos")
    assert cfg.train.batch_size == TrainConfig().batch_size  # untouched keys keep defaults
    assert cfg.where("train.epochs") == "-o" and cfg.where("train.learning_rate") == str(path)


def test_override_types_follow_the_field():
    cfg = load_config(
        None,
        [
            "model.name=123",
            "train.progress=false",
            "data.label_names=a,b,c",
            "data.val_size=500",
            "tracking.run_name=null",
        ],
    )
    assert cfg.model.name == "123"  # a string field keeps the raw text
    assert cfg.train.progress is False
    assert cfg.data.label_names == ("a", "b", "c")
    assert cfg.data.val_size == 500.0
    assert cfg.tracking.run_name is None


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "train:\n  learning_rate: -1e-5\n  epohcs: 3\n  batch_size: 2.5\n"
        "data:\n  train_fraction: 1.5\n  split: random\nfoo:\n  bar: 1\n"
    )
    problems = problems_of(path, ["train.patience=-1", "nonsense"])
    text = "\n".join(problems)
    assert f"{path}: train.learning_rate: must be in (0, 1), e.g. 5e-5, got -1e-05" in problems
    assert f"{path}: train.epohcs: unknown key; did you mean train.epochs?" in problems
    assert f"{path}: train.batch_size: must be an integer, got 2.5" in problems
    assert f"{path}: data.train_fraction: must be in (0, 1], got 1.5" in problems
    assert (
        f"{path}: data.split: must be one of provided, pool, subset, given, got 'random'"
        in problems
    )
    assert (
        f"{path}: foo.bar: unknown section; expected one of data, model, train, tracking"
        in problems
    )
    assert "-o: train.patience: must be >= 0 (0 disables early stopping), got -1" in problems
    assert "-o nonsense: overrides must be key=value" in text
    assert len(problems) == 8


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "data.val_size=0",
            "data.val_size: must be a fraction in (0, 1) or a whole row count >= 1",
        ),
        (
            "data.test_size=2.5",
            "data.test_size: must be a fraction in (0, 1) or a whole row count >= 1",
        ),
        ("data.max_length=4", "data.max_length: must be >= 8 tokens"),
        ("data.label_names=a,a", "data.label_names: names must be unique"),
        ("data.label_column=text", "data.label_column: must differ from data.text_column"),
        ("data.name=", "data.name: must not be empty"),
        ("train.epochs=0", "train.epochs: must be >= 1"),
        ("train.batch_size=0", "train.batch_size: must be >= 1"),
        ("train.grad_accum_steps=0", "train.grad_accum_steps: must be >= 1"),
        ("train.eval_batch_size=0", "train.eval_batch_size: must be >= 1"),
        ("train.learning_rate=2", "train.learning_rate: must be in (0, 1)"),
        ("train.weight_decay=-0.1", "train.weight_decay: must be >= 0"),
        ("train.warmup_ratio=1", "train.warmup_ratio: must be in [0, 1)"),
        ("train.max_grad_norm=-1", "train.max_grad_norm: must be >= 0"),
        ("train.precision=fp8", "train.precision: must be one of auto, fp32, bf16, fp16"),
        ("train.device=gpu", "train.device: must be auto, cpu, cuda, cuda:N or mps"),
        ("train.num_workers=-1", "train.num_workers: must be >= 0"),
        ("train.progress=maybe", "train.progress: must be true or false"),
        ("train.learning_rate=fast", "train.learning_rate: must be a number"),
        ("tracking.experiment= ", "tracking.experiment: must not be empty"),
    ],
)
def test_each_invalid_value_is_named(override, message):
    problems = problems_of(None, [override])
    assert len(problems) == 1 and problems[0].startswith("-o: ") and message in problems[0]


def test_unsafe_yaml_tags_are_rejected(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("train: !!python/object/apply:os.system ['echo pwned']\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: not valid YAML")


def test_missing_and_malformed_files(tmp_path):
    assert problems_of(tmp_path / "nope.yaml") == [
        f"{tmp_path / 'nope.yaml'}: file not found; pass an existing YAML file to --config"
    ]
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert "top level must be a mapping" in problems_of(tmp_path / "list.yaml")[0]
    (tmp_path / "flat.yaml").write_text("train: 3\n")
    assert "train: must be a mapping of keys" in problems_of(tmp_path / "flat.yaml")[0]


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = load_config(None, ["data.label_names=neg,pos", "train.epochs=4"])
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(path) == cfg
    assert yaml.safe_load(path.read_text())["data"]["label_names"] == ["neg", "pos"]


def test_flat_params_are_namespaced():
    flat = load_config().flat()
    for key in (
        "data.name",
        "data.train_fraction",
        "data.max_length",
        "data.seed",
        "model.name",
        "train.learning_rate",
        "train.batch_size",
        "train.epochs",
        "train.seed",
    ):
        assert key in flat
    assert all(key.split(".")[0] in ("data", "model", "train", "tracking") for key in flat)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg != Config(), f"{path.name} changes nothing"
    raw = yaml.safe_load(path.read_text())
    for section, values in raw.items():  # each key in the file reached the config
        for key, value in values.items():
            got = getattr(getattr(cfg, section), key)
            assert got == (tuple(value) if isinstance(value, list) else value), f"{section}.{key}"


def test_each_section_says_where_its_values_were_set(tmp_path):
    """A package given one section still names the file or flag behind a bad value."""
    from textclf.config import replace

    path = tmp_path / "c.yaml"
    path.write_text("data: {max_length: 64}\n")
    cfg = load_config(path, ["train.epochs=2"])
    assert cfg.data.where("data.max_length") == str(path)
    assert cfg.train.where("train.epochs") == "-o"
    assert cfg.model.where("model.name") == str(path)  # not set: the file the config came from
    assert replace(cfg, model__name="x").data.where("data.max_length") == str(path)
