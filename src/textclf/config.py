"""Run configuration: a tree of frozen dataclasses with defaults.

YAML files and `-o section.key=value` overrides are deltas on these defaults. Unknown keys, wrong types
and invalid values are collected and reported together, one `origin: key: problem` line each.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from textclf.errors import InputError


@dataclass(frozen=True)
class DataConfig:
    name: str = "imdb"  # $TEXTCLF_ASSETS/data/<name>, a local file or directory, or a Hugging Face dataset
    text_column: str = "text"
    label_column: str = "label"  # TREC: coarse_label (6 classes) or fine_label (50)
    label_names: tuple[str, ...] = ()  # names of integer labels 0..K-1; () = file metadata or label values
    train_split: str = "train"  # split (file stem) that training rows come from
    test_split: str = "test"  # split used as the test set (pool and subset pool it with train)
    # provided: keep the test split, carve val from train | pool: carve val and test from all rows, then
    # train_fraction of the rest (comparable across fractions) | subset: the notebooks' subset-then-split
    split: str = "provided"
    train_fraction: float = 1.0  # stratified fraction of the training rows, (0, 1]; nested for one seed
    # < 1: a fraction, >= 1: rows. pool: of the whole pool; subset: of the subset; provided: of train
    val_size: float = 0.1
    test_size: float | None = None  # pool/subset: like val_size (None = 0.1); provided: test subsample (None = all)
    max_length: int = 128  # tokens per text including [CLS]/[SEP]; at most the model's position limit
    seed: int = 42  # split seed, separate from train.seed so one split serves many runs
    token_cache: bool = True  # token ids cached on disk ($TEXTCLF_CACHE, else ~/.cache/textclf)

    def pool_test_size(self) -> float:
        return 0.1 if self.test_size is None else self.test_size


@dataclass(frozen=True)
class ModelConfig:
    name: str = "all-MiniLM-L6-v2"  # $TEXTCLF_ASSETS/models/<name>, a local directory, or a hub id
    # what trains: presets (full, head_only, embeddings+layer0, top{k}, bottom{k}, attention_only, ffn_only,
    # layernorm_only, bias_only) and/or parameter-name patterns ('*.layer.11.*'); the head always trains
    freeze: tuple[str, ...] = ("full",)
    head: str = "auto"  # auto (the checkpoint's own head) | cls | mean | cnn | mlp
    pooling: str = "cls"  # the mlp head's input: cls | mean
    head_dropout: float = 0.1  # cls, mean, cnn and mlp heads
    mlp_hidden: int = 256
    cnn_channels: int = 128  # per kernel width
    cnn_kernels: tuple[int, ...] = (2, 3, 4)
    peft: str = "none"  # none | lora | prompt (soft prompt tokens) | prefix (past-key-value prefixes)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    prefix_length: int = 20  # virtual tokens for prompt / prefix tuning
    save_base: bool = True  # peft: false saves only the adapter and the base model's location


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3  # upper bound; early stopping may end sooner
    batch_size: int = 16  # sequences per forward pass (micro-batch)
    grad_accum_steps: int = 1  # optimizer step every N micro-batches
    eval_batch_size: int = 64
    learning_rate: float = 5e-5  # peak AdamW learning rate
    weight_decay: float = 0.01  # never applied to biases or LayerNorm weights
    warmup_ratio: float = 0.1  # fraction of optimizer steps with linear warmup; then linear decay to 0
    max_grad_norm: float = 1.0  # gradient clipping; 0 disables
    patience: int = 2  # epochs without val-loss improvement before stopping; 0 = never stop early
    precision: str = "auto"  # auto (bf16 or fp16 autocast on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 42  # model head init, batch order, dropout
    num_workers: int = 0  # DataLoader workers; batches are pre-tokenized, so 0 is usually fastest
    checkpoint: bool = False  # save resumable state after every epoch (textclf train --resume RUN_ID)
    checkpoint_dir: str = "checkpoints"  # checkpoints go to <checkpoint_dir>/<MLflow run id>/
    group_by_length: bool = False  # batches of similar lengths: 2.3x faster steps at 512 (bench/group_by_length)
    progress: bool = True  # tqdm bars on stderr

    def effective_batch_size(self) -> int:
        return self.batch_size * self.grad_accum_steps


@dataclass(frozen=True)
class TrackingConfig:
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working dir
    experiment: str = "textclf"
    run_name: str | None = None
    log_model: bool = True  # log model/ (weights + tokenizer) as an MLflow transformers model
    outage_wait_s: float = 900.0  # at a run's end, how long to wait for an unreachable tracking server
    heartbeat_s: float = 30.0  # a RUNNING run silent for 4 heartbeats is ended FAILED by the next textclf start


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # where each key was set ("configs/x.yaml", "-o"), for error messages; not part of the config
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def where(self, key: str) -> str:
        return dict(self.origins).get(key, dict(self.origins).get("", "config"))

    def to_dict(self) -> dict[str, Any]:
        return {s.name: _plain(dataclasses.asdict(getattr(self, s.name))) for s in _sections()}

    def flat(self) -> dict[str, Any]:
        """`section.key -> value`: the params every run logs."""
        return {f"{s}.{k}": v for s, d in self.to_dict().items() for k, v in d.items()}


def _sections() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(Config) if f.name != "origins"]


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = (),
                deltas: typing.Sequence[tuple[str, dict[str, Any]]] = ()) -> Config:
    """Defaults <- YAML file <- deltas (origin, {section.key: value}) <- overrides, then validation;
    raises InputError listing every problem."""
    problems: list[str] = []
    source = str(path) if path else "config"
    delta: dict[str, tuple[Any, str, bool]] = {}  # key -> (value, origin, value is a raw string)
    if path:
        for key, value in _read_yaml(Path(path), problems).items():
            delta[key] = (value, source, False)
    for origin, values in deltas:
        for key, value in values.items():
            delta[key] = (value, origin, False)
    for text in overrides:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            problems.append(f"-o {text}: overrides must be key=value, e.g. -o train.epochs=2")
            continue
        delta[key.strip()] = (value.strip(), "-o", True)
    sections = _build_sections(delta, problems)
    origins = (("", source),) + tuple((k, o) for k, (_, o, _) in delta.items())
    cfg = Config(**sections, origins=origins)
    problems += [f"{cfg.where(k)}: {k}: {msg}" for k, msg in validate(cfg)]
    if problems:
        raise InputError(problems)
    return cfg


def flatten_tree(tree: Any, origin: str, problems: list[str]) -> dict[str, Any]:
    """{section: {key: value}} -> {section.key: value}; dotted keys pass through."""
    if not isinstance(tree, dict):
        problems.append(f"{origin}: must be a mapping of sections (data, model, train, tracking)")
        return {}
    flat: dict[str, Any] = {}
    for section, body in tree.items():
        if isinstance(body, dict):
            flat.update({f"{section}.{k}": v for k, v in body.items()})
        else:
            flat[str(section)] = body  # a dotted key, or reported by _build_sections
    return flat


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        problems.append(f"{path}: file not found; pass an existing YAML file to --config")
        return {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        problems.append(f"{path}: not valid YAML ({' '.join(str(e).split())}); fix the syntax")
        return {}
    if not isinstance(tree, dict):
        problems.append(f"{path}: top level must be a mapping of sections (data, model, train, tracking)")
        return {}
    return flatten_tree(tree, str(path), problems)


def _build_sections(delta: dict, problems: list[str]) -> dict[str, Any]:
    names = [s.name for s in _sections()]
    values: dict[str, dict[str, Any]] = {n: {} for n in names}
    hints = {n: typing.get_type_hints(s.default_factory) for n, s in zip(names, _sections())}
    for key, (value, origin, raw) in delta.items():
        section, _, sub = key.partition(".")
        if section not in values:
            problems.append(f"{origin}: {key}: unknown section; expected one of {', '.join(names)}")
        elif not sub:
            problems.append(f"{origin}: {key}: must be a mapping of keys, e.g. {section}:\\n  key: value")
        elif sub not in hints[section]:
            near = difflib.get_close_matches(sub, list(hints[section]), n=1)
            hint = f"; did you mean {section}.{near[0]}?" if near else ""
            problems.append(f"{origin}: {key}: unknown key{hint}")
        else:
            try:
                values[section][sub] = _coerce(value, hints[section][sub], raw)
            except ValueError as e:
                problems.append(f"{origin}: {key}: {e}, got {value!r}")
    return {n: s.default_factory(**values[n]) for n, s in zip(names, _sections())}


def _coerce(value: Any, hint: Any, raw: bool) -> Any:
    """Check `value` against a field's type; an override's raw string is parsed as the type needs."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if (value is None) or (raw and value.lower() in ("null", "none", "~")):
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), raw)
    if typing.get_origin(hint) is tuple:
        item = args[0]
        if raw:
            value = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        elif isinstance(value, str):  # `freeze: top2` means [top2]; "a,b" (a sweep choice) means [a, b]
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if item is int and raw and isinstance(value, list):
            value = [int(v) if v.lstrip("-").isdigit() else v for v in value]
        if not isinstance(value, list | tuple) or not all(type(v) is item for v in value):
            raise ValueError(f"must be a list of {'strings' if item is str else 'integers'}")
        return tuple(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value
    if raw:
        value = yaml.safe_load(value) if value else None
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and not isinstance(value, bool):
        try:  # YAML reads 5e-5 (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"must be {'a number' if hint is float else 'an integer' if hint is int else 'true or false'}")


HEADS = ("auto", "cls", "mean", "cnn", "mlp")
FIXED_PRESETS = ("full", "head_only", "embeddings+layer0", "attention_only", "ffn_only", "layernorm_only",
                 "bias_only")
BLOCK_PRESET = re.compile(r"(top|bottom)(\d+)")


def is_preset(item: str) -> bool:
    return item in FIXED_PRESETS or BLOCK_PRESET.fullmatch(item) is not None


def is_pattern(item: str) -> bool:
    return any(c in item for c in "*?[.")


def describe_presets() -> str:
    return ", ".join(FIXED_PRESETS) + ", top{k}, bottom{k}"


SPLIT_MODES = ("provided", "pool", "subset")
PEFT_METHODS = ("none", "lora", "prompt", "prefix")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def validate(cfg: Config) -> list[tuple[str, str]]:
    """Every invalid value as (key, problem)."""
    d, m, t = cfg.data, cfg.model, cfg.train
    checks = [
        ("data.name", d.name.strip() != "", "must not be empty"),
        ("data.label_column", d.label_column != d.text_column, "must differ from data.text_column"),
        ("data.label_names", len(set(d.label_names)) == len(d.label_names), "names must be unique"),
        ("data.label_names", len(d.label_names) != 1, "must name at least 2 labels (or none: read them)"),
        ("data.split", d.split in SPLIT_MODES, f"must be one of {', '.join(SPLIT_MODES)}"),
        ("data.train_fraction", 0 < d.train_fraction <= 1, "must be in (0, 1]"),
        ("data.max_length", d.max_length >= 8, "must be >= 8 tokens"),
        ("model.freeze", len(m.freeze) >= 1, f"must name what trains, e.g. full or top2 ({describe_presets()})"),
        ("model.head", m.head in HEADS, f"must be one of {', '.join(HEADS)}"),
        ("model.pooling", m.pooling in ("cls", "mean"), "must be cls or mean"),
        ("model.head_dropout", 0 <= m.head_dropout < 1, "must be in [0, 1)"),
        ("model.mlp_hidden", m.mlp_hidden >= 1, "must be >= 1"),
        ("model.cnn_channels", m.cnn_channels >= 1, "must be >= 1"),
        ("model.cnn_kernels", len(m.cnn_kernels) >= 1 and min(m.cnn_kernels, default=0) >= 1,
         "must be one or more widths >= 1, e.g. [2, 3, 4]"),
        ("model.peft", m.peft in PEFT_METHODS, f"must be one of {', '.join(PEFT_METHODS)}"),
        ("model.peft", m.peft == "none" or m.head == "auto", "works with model.head=auto only"),
        ("model.peft", m.peft == "none" or m.freeze == ("full",),
         "freezes the backbone itself; leave model.freeze at full"),
        ("model.lora_r", m.lora_r >= 1, "must be >= 1"),
        ("model.lora_alpha", m.lora_alpha >= 1, "must be >= 1"),
        ("model.lora_dropout", 0 <= m.lora_dropout < 1, "must be in [0, 1)"),
        ("model.prefix_length", m.prefix_length >= 1, "must be >= 1"),
        ("train.epochs", t.epochs >= 1, "must be >= 1"),
        ("train.batch_size", t.batch_size >= 1, "must be >= 1"),
        ("train.grad_accum_steps", t.grad_accum_steps >= 1, "must be >= 1"),
        ("train.eval_batch_size", t.eval_batch_size >= 1, "must be >= 1"),
        ("train.learning_rate", 0 < t.learning_rate < 1, "must be in (0, 1), e.g. 5e-5"),
        ("train.weight_decay", t.weight_decay >= 0, "must be >= 0"),
        ("train.warmup_ratio", 0 <= t.warmup_ratio < 1, "must be in [0, 1)"),
        ("train.max_grad_norm", t.max_grad_norm >= 0, "must be >= 0 (0 disables clipping)"),
        ("train.patience", t.patience >= 0, "must be >= 0 (0 disables early stopping)"),
        ("train.precision", t.precision in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}"),
        ("train.device", re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", t.device) is not None,
         "must be auto, cpu, cuda, cuda:N or mps"),
        ("train.num_workers", t.num_workers >= 0, "must be >= 0"),
        ("tracking.experiment", cfg.tracking.experiment.strip() != "", "must not be empty"),
        ("tracking.outage_wait_s", cfg.tracking.outage_wait_s >= 0, "must be >= 0"),
        ("tracking.heartbeat_s", cfg.tracking.heartbeat_s >= 1, "must be >= 1 (seconds)"),
    ]
    problems = [(key, f"{msg}, got {_value(cfg, key)!r}") for key, ok, msg in checks if not ok]
    problems += [("model.freeze", f"{item!r} is not a preset ({describe_presets()}) or a parameter-name pattern "
                  f"such as '*.layer.11.*'") for item in m.freeze if not (is_preset(item) or is_pattern(item))]
    problems += loggable(cfg.flat())
    for key in ("data.val_size", "data.test_size"):
        size = _value(cfg, key)
        if size is not None and not (0 < size < 1 or (size >= 1 and float(size).is_integer())):
            problems.append((key, f"must be a fraction in (0, 1) or a whole row count >= 1, got {size!r}"))
    return problems


MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
# values shaped like access tokens (Hugging Face, OpenAI-style, GitHub): never config, never a logged param
SECRET_VALUE = re.compile(r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,})$")


def loggable(flat: dict[str, Any]) -> list[tuple[str, str]]:
    """Values that cannot become MLflow params: too long, or a secret that must not be logged at all."""
    problems = []
    for key, value in flat.items():
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        if len(text) > MAX_PARAM_CHARS:
            problems.append((key, f"too long to log as an MLflow param ({len(text)} > {MAX_PARAM_CHARS} characters); "
                                  f"shorten it"))
        if SECRET_VALUE.match(text):
            problems.append((key, "looks like a secret token; pass secrets through environment variables "
                                  "(e.g. HF_TOKEN), never in a config"))
    return problems


def _value(cfg: Config, key: str) -> Any:
    section, _, sub = key.partition(".")
    return getattr(getattr(cfg, section), sub)


def replace(cfg: Config, **changes: Any) -> Config:
    """A copy with `section.key` changes (keys as keyword names with '.' written '__')."""
    sections = {s.name: getattr(cfg, s.name) for s in _sections()}
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        sections[section] = dataclasses.replace(sections[section], **{sub: value})
    return Config(**sections, origins=cfg.origins)


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
