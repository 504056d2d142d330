"""Reading a config: defaults <- YAML file <- deltas <- `-o` overrides, each value coerced to its field's type,
then validated. Unknown keys (with a did-you-mean), wrong types and invalid values are collected and reported
together, one `origin: key: problem` line each (InputError, exit 2)."""
from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from textclf.config.schema import (
    MAX_PARAM_CHARS,
    SECRET_VALUE,
    Config,
    _sections,
    describe_presets,
    is_pattern,
    is_preset,
)
from textclf.errors import InputError


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
        if isinstance(body, dict) and "." not in str(section):  # `model.config: {...}` is one key's mapping
            flat.update({f"{section}.{k}": v for k, v in body.items()})
        else:
            flat[str(section)] = body  # a dotted key, or reported by _build_sections
    return flat


def read_mapping(path: Path, missing: str, expected: str) -> tuple[dict | None, str | None]:
    """A YAML file whose top level is a mapping (yaml.safe_load only), or the one line saying why not."""
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{path}: file not found; {missing}"
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        return None, f"{path}: not valid YAML ({' '.join(str(e).split())}); fix the syntax"
    tree = {} if tree is None else tree
    if not isinstance(tree, dict):
        return None, f"{path}: top level must be a mapping {expected}"
    return tree, None


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    tree, problem = read_mapping(path, "pass an existing YAML file to --config",
                                 "of sections (data, model, train, tracking)")
    if problem:
        problems.append(problem)
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
    if typing.get_origin(hint) is typing.Literal:  # a choice
        if value not in args:
            raise ValueError(f"must be one of {', '.join(args)}")
        return value
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
        elif isinstance(value, dict) and item is str:  # model.config {num_hidden_layers: 4}: [num_hidden_layers=4]
            value = [f"{k}={v}" for k, v in value.items()]
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


def validate(cfg: Config) -> list[tuple[str, str]]:
    """Every invalid value as (key, problem)."""
    d, m, t = cfg.data, cfg.model, cfg.train
    checks = _train_checks(t) + [
        ("data.name", d.name.strip() != "", "must not be empty"),
        ("data.label_column", d.label_column != d.text_column, "must differ from data.text_column"),
        ("data.label_names", len(set(d.label_names)) == len(d.label_names), "names must be unique"),
        ("data.label_names", len(d.label_names) != 1, "must name at least 2 labels (or none: read them)"),
        ("data.train_fraction", 0 < d.train_fraction <= 1, "must be in (0, 1]"),
        ("data.max_length", d.max_length >= 8, "must be >= 8 tokens"),
        ("model.freeze", len(m.freeze) >= 1, f"must name what trains, e.g. full or top2 ({describe_presets()})"),
        ("model.head_dropout", 0 <= m.head_dropout < 1, "must be in [0, 1)"),
        ("model.mlp_hidden", m.mlp_hidden >= 1, "must be >= 1"),
        ("model.cnn_channels", m.cnn_channels >= 1, "must be >= 1"),
        ("model.cnn_kernels", len(m.cnn_kernels) >= 1 and min(m.cnn_kernels, default=0) >= 1,
         "must be one or more widths >= 1, e.g. [2, 3, 4]"),
        ("model.peft", m.peft == "none" or m.head == "auto", "works with model.head=auto only"),
        ("model.peft", m.peft == "none" or m.freeze == ("full",),
         "freezes the backbone itself; leave model.freeze at full"),
        ("model.config", not m.config or m.init == "random",
         "changes the architecture, so pretrained weights would not fit; set model.init=random"),
        ("model.config", all("=" in item and item.split("=")[0].strip() for item in m.config),
         "must be key=value items, e.g. [num_hidden_layers=4, hidden_size=256]"),
        ("model.lora_r", m.lora_r >= 1, "must be >= 1"),
        ("model.lora_alpha", m.lora_alpha >= 1, "must be >= 1"),
        ("model.lora_dropout", 0 <= m.lora_dropout < 1, "must be in [0, 1)"),
        ("model.prefix_length", m.prefix_length >= 1, "must be >= 1"),
        ("tracking.experiment", cfg.tracking.experiment.strip() != "", "must not be empty"),
        ("tracking.outage_wait_s", cfg.tracking.outage_wait_s >= 0, "must be >= 0"),
        ("tracking.heartbeat_s", cfg.tracking.heartbeat_s >= 1, "must be >= 1 (seconds)"),
        ("tracking.champion_alpha", 0 < cfg.tracking.champion_alpha < 1, "must be in (0, 1), e.g. 0.05"),
        ("tracking.system_metrics_interval_s", cfg.tracking.system_metrics_interval_s >= 0.5,
         "must be >= 0.5 (seconds)"),
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


def _train_checks(t) -> list[tuple[str, bool, str]]:
    return [
        ("train.epochs", t.epochs >= 1, "must be >= 1"),
        ("train.batch_size", t.batch_size >= 1, "must be >= 1"),
        ("train.grad_accum_steps", t.grad_accum_steps >= 1, "must be >= 1"),
        ("train.eval_batch_size", t.eval_batch_size >= 1, "must be >= 1"),
        ("train.learning_rate", 0 < t.learning_rate < 1, "must be in (0, 1), e.g. 5e-5"),
        ("train.weight_decay", t.weight_decay >= 0, "must be >= 0"),
        ("train.warmup_ratio", 0 <= t.warmup_ratio < 1, "must be in [0, 1)"),
        ("train.adam_beta1", 0 <= t.adam_beta1 < 1, "must be in [0, 1)"),
        ("train.adam_beta2", 0 <= t.adam_beta2 < 1, "must be in [0, 1)"),
        ("train.adam_eps", 0 < t.adam_eps < 1, "must be in (0, 1), e.g. 1e-8"),
        ("train.min_delta", t.min_delta >= 0, "must be >= 0"),
        ("train.max_grad_norm", t.max_grad_norm >= 0, "must be >= 0 (0 disables clipping)"),
        ("train.patience", t.patience >= 0, "must be >= 0 (0 disables early stopping)"),
        ("train.device", re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", t.device) is not None,
         "must be auto, cpu, cuda, cuda:N or mps"),
        ("train.num_workers", t.num_workers is None or t.num_workers >= 0, "must be >= 0 (or null: automatic)"),
    ]


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


