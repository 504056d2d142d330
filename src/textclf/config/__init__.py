"""The run configuration: the dataclass tree (schema.py), model.freeze's words (presets.py), how it
is read (load.py) and how it is checked (checks.py)."""

from textclf.config.checks import loggable, validate
from textclf.config.load import flatten_tree, load_config, read_mapping
from textclf.config.presets import (
    BLOCK_PRESET,
    FIXED_PRESETS,
    describe_presets,
    is_pattern,
    is_preset,
)
from textclf.config.schema import (
    MAX_PARAM_CHARS,
    SECRET_VALUE,
    Config,
    DataConfig,
    ModelConfig,
    TrackingConfig,
    TrainConfig,
    dump_yaml,
    replace,
)

__all__ = [
    "BLOCK_PRESET",
    "FIXED_PRESETS",
    "MAX_PARAM_CHARS",
    "SECRET_VALUE",
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrackingConfig",
    "TrainConfig",
    "describe_presets",
    "dump_yaml",
    "flatten_tree",
    "is_pattern",
    "is_preset",
    "load_config",
    "loggable",
    "read_mapping",
    "replace",
    "validate",
]
