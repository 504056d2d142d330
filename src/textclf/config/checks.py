"""The values of a loaded config, checked together: one (key, problem) per invalid value, so a user
sees every problem of a file at once (config/load.py reports them with their origins)."""

from __future__ import annotations

import re
from typing import Any

from textclf.config.presets import describe_presets, is_pattern, is_preset
from textclf.config.schema import (
    MAX_PARAM_CHARS,
    PEFT_HEADS,
    SECRET_VALUE,
    Config,
    DataConfig,
    ModelConfig,
    TrackingConfig,
)
from textclf.pathnames import name_problem


def validate(cfg: Config) -> list[tuple[str, str]]:
    """Every invalid value as (key, problem)."""
    checks = (
        train_checks(cfg.train)
        + data_checks(cfg.data)
        + model_checks(cfg.model)
        + tracking_checks(cfg.tracking)
    )
    problems = [(key, f"{msg}, got {_value(cfg, key)!r}") for key, ok, msg in checks if not ok]
    problems += [
        (
            "model.freeze",
            f"{item!r} is not a preset ({describe_presets()}) or a parameter-name pattern "
            "such as '*.layer.11.*'",
        )
        for item in cfg.model.freeze
        if not (is_preset(item) or is_pattern(item))
    ]
    problems += path_names(cfg)
    problems += loggable(cfg.flat())
    for key in ("data.val_size", "data.test_size"):
        size = _value(cfg, key)
        if size is not None and not (0 < size < 1 or (size >= 1 and float(size).is_integer())):
            problems.append(
                (key, f"must be a fraction in (0, 1) or a whole row count >= 1, got {size!r}")
            )
    return problems


Check = tuple[str, bool, str]  # (key, is it valid, what it must be)


def data_checks(d: DataConfig) -> list[Check]:
    return [
        ("data.name", d.name.strip() != "", "must not be empty"),
        ("data.label_column", d.label_column != d.text_column, "must differ from data.text_column"),
        ("data.label_names", len(set(d.label_names)) == len(d.label_names), "names must be unique"),
        (
            "data.label_names",
            len(d.label_names) != 1,
            "must name at least 2 labels (or none: read them)",
        ),
        ("data.train_fraction", 0 < d.train_fraction <= 1, "must be in (0, 1]"),
        ("data.max_length", d.max_length >= 8, "must be >= 8 tokens"),
    ]


def model_checks(m: ModelConfig) -> list[Check]:
    return [
        (
            "model.freeze",
            len(m.freeze) >= 1,
            f"must name what trains, e.g. full or top2 ({describe_presets()})",
        ),
        ("model.head_dropout", 0 <= m.head_dropout < 1, "must be in [0, 1)"),
        ("model.mlp_hidden", m.mlp_hidden >= 1, "must be >= 1"),
        ("model.cnn_channels", m.cnn_channels >= 1, "must be >= 1"),
        (
            "model.cnn_kernels",
            len(m.cnn_kernels) >= 1 and min(m.cnn_kernels, default=0) >= 1,
            "must be one or more widths >= 1, e.g. [2, 3, 4]",
        ),
        (
            "model.peft",
            m.peft == "none" or m.head in PEFT_HEADS,
            f"works with model.head={' or '.join(PEFT_HEADS)} only",
        ),
        (
            "model.peft",
            m.peft == "none" or m.freeze == ("full",),
            "freezes the backbone itself; leave model.freeze at full",
        ),
        (
            "model.config",
            not m.config or m.init == "random",
            "changes the architecture, so pretrained weights would not fit; set model.init=random",
        ),
        (
            "model.config",
            all("=" in item and item.split("=")[0].strip() for item in m.config),
            "must be key=value items, e.g. [num_hidden_layers=4, hidden_size=256]",
        ),
        ("model.lora_r", m.lora_r >= 1, "must be >= 1"),
        ("model.lora_alpha", m.lora_alpha >= 1, "must be >= 1"),
        ("model.lora_dropout", 0 <= m.lora_dropout < 1, "must be in [0, 1)"),
        ("model.prefix_length", m.prefix_length >= 1, "must be >= 1"),
    ]


def tracking_checks(k: TrackingConfig) -> list[Check]:
    return [
        ("tracking.experiment", k.experiment.strip() != "", "must not be empty"),
        ("tracking.outage_wait_s", k.outage_wait_s >= 0, "must be >= 0"),
        ("tracking.heartbeat_s", k.heartbeat_s >= 1, "must be >= 1 (seconds)"),
        ("tracking.champion_alpha", 0 < k.champion_alpha < 1, "must be in (0, 1), e.g. 0.05"),
        (
            "tracking.system_metrics_interval_s",
            k.system_metrics_interval_s >= 0.5,
            "must be >= 0.5 (seconds)",
        ),
    ]


def path_names(cfg: Config) -> list[tuple[str, str]]:
    """The names that become paths or store entries (pathnames.py: one rule for all of them)."""
    named = (
        ("tracking.experiment", cfg.tracking.experiment, False),
        ("tracking.register_as", cfg.tracking.register_as, True),
    )
    return [
        (key, problem)
        for key, name, strict in named
        if name and (problem := name_problem(name, strict))
    ]


def train_checks(t) -> list[tuple[str, bool, str]]:
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
        (
            "train.device",
            re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", t.device) is not None,
            "must be auto, cpu, cuda, cuda:N or mps",
        ),
        (
            "train.num_workers",
            t.num_workers is None or t.num_workers >= 0,
            "must be >= 0 (or null: automatic)",
        ),
        ("train.devices", t.devices >= 1, "must be >= 1"),
        (
            "train.devices",
            t.devices == 1 or not t.compile,
            "above 1 does not yet combine with train.compile; set train.compile=false",
        ),
        (
            "train.devices",
            t.devices == 1 or t.device in ("auto", "cpu", "cuda"),
            "above 1 takes GPUs 0..N-1 (or CPU processes): set train.device to auto, cpu or cuda",
        ),
    ]


def loggable(flat: dict[str, Any]) -> list[tuple[str, str]]:
    """Values that cannot become MLflow params: too long, or a secret that must never be logged."""
    problems = []
    for key, value in flat.items():
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        if len(text) > MAX_PARAM_CHARS:
            problems.append(
                (
                    key,
                    f"too long to log as an MLflow param ({len(text)} > "
                    f"{MAX_PARAM_CHARS} characters); "
                    f"shorten it",
                )
            )
        if SECRET_VALUE.match(text):
            problems.append(
                (
                    key,
                    "looks like a secret token; pass secrets through environment "
                    "variables "
                    "(e.g. HF_TOKEN), never in a config",
                )
            )
    return problems


def _value(cfg: Config, key: str) -> Any:
    section, _, sub = key.partition(".")
    return getattr(getattr(cfg, section), sub)
