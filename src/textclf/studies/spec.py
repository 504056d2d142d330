"""Sweep files (sweeps/*.yaml): a base config, a search space or an exact grid, the sampler, the
pruner and the objective.

    base: ../configs/quickstart.yaml      # optional, relative to the sweep file
    config: {train: {epochs: 1}}          # a delta on the base, the tree `textclf train` reads
    study: {name: my-study, sampler: tpe, pruner: median, n_trials: 20}
    # one objective, or several: {best_val_accuracy: maximize, train_time_s: minimize}
    objective: best_val_accuracy
    space:
      train.learning_rate: {loguniform: [1.0e-5, 1.0e-3]}
      data.max_length: {categorical: [128, 256, 512]}
      train.batch_size: {follows: data.max_length, map: {128: 32, 256: 16, 512: 8}}
    # exact points, instead of the space's categorical dimensions (follows rules still apply)
    grid:
      - {data.max_length: 128, train.learning_rate: 5.0e-5}

spec_file.py reads and checks a file into a SweepSpec (with spec_checks.py), reporting every
problem at once as `file: key: problem`. This module does not import optuna: a trial is anything
with optuna's suggest_* methods, and `trial_config` is the one place a trial becomes a Config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from textclf.config import Config, load_config
from textclf.training.summary import DEFAULT_OBJECTIVE

KINDS = ("loguniform", "uniform", "int", "categorical", "follows")
TOP_KEYS = ("base", "config", "study", "objective", "space", "grid", "retry_oom")
STUDY_KEYS = (
    "name",
    "storage",
    "sampler",
    "pruner",
    "pruner_args",
    "n_trials",
    "timeout",
    "seed",
    "heartbeat_s",
    "retries",
    "max_failures",
    "keep_models",
)
KEEP_MODELS = ("best", "all", "none")
# keys that make a YAML file a sweep file
SWEEP_ONLY = ("base", "study", "space", "grid", "objective")
GRID_POINT = "grid_point"


@dataclass(frozen=True)
class Dimension:
    kind: str  # one of KINDS
    values: tuple = ()  # categorical choices, or (low, high[, step]) of a range
    source: str = ""  # follows: the key whose value picks from `mapping`
    mapping: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    base: Path | None
    config: dict[str, Any]  # flat section.key delta on the base
    name: str
    storage: str | None = None
    sampler: str = "tpe"
    pruner: str = "none"
    pruner_args: dict = field(default_factory=dict)
    n_trials: int | None = None
    timeout: float | None = None
    seed: int = 42
    objectives: tuple[tuple[str, str], ...] = (DEFAULT_OBJECTIVE,)
    space: dict[str, Dimension] = field(default_factory=dict)
    grid: tuple[dict[str, Any], ...] = ()
    retry_oom: bool = True
    heartbeat_s: float = 30.0  # a worker silent for 4 heartbeats has its trial failed (and retried)
    retries: int = 0  # reruns of a trial whose worker died (kill -9, machine lost), as a new trial
    max_failures: int = 3  # the sweep stops (exit 1) after this many failed trials in a row
    # best | all | none: which trials keep their logged model (studies/best_models.py)
    keep_models: str = "best"

    def grid_space(self) -> dict[str, list]:
        """The grid sampler's search space: grid-point indices, or every categorical dimension."""
        if self.grid:
            return {GRID_POINT: list(range(len(self.grid)))}
        return {k: list(d.values) for k, d in self.space.items() if d.kind == "categorical"}

    def grid_size(self) -> int:
        sizes = [len(v) for v in self.grid_space().values()]
        return math.prod(sizes) if sizes else 0

    def target_trials(self) -> int | None:
        return (
            self.n_trials
            if self.n_trials is not None
            else (self.grid_size() if self.sampler == "grid" else None)
        )

    def searched_keys(self) -> list[str]:
        """The keys a trial chooses (grid points and dimensions), not those following another."""
        return [
            k for k in self.varied_keys() if k not in self.space or self.space[k].kind != "follows"
        ]

    def varied_keys(self) -> list[str]:
        return list(dict.fromkeys([k for point in self.grid for k in point] + list(self.space)))

    def describe_space(self) -> dict[str, Any]:
        return {
            "space": {
                k: {d.kind: list(d.values) if d.kind != "follows" else {d.source: d.mapping}}
                for k, d in self.space.items()
            },
            "grid": list(self.grid),
        }


def trial_config(spec: SweepSpec, trial, overrides: tuple[str, ...] = ()) -> Config:
    """The search space, all of it: the trial's suggestions (or grid point), `follows` rules, the
    base. Overrides of searched keys gave those keys new choices (replace_choices, below); they
    do not fix the value."""
    overrides = tuple(o for o in overrides if o.partition("=")[0].strip() not in spec.varied_keys())
    chosen: dict[str, Any] = {}
    if spec.grid:
        chosen |= spec.grid[trial.suggest_categorical(GRID_POINT, list(range(len(spec.grid))))]
    for key, dim in spec.space.items():
        if dim.kind == "loguniform":
            chosen[key] = trial.suggest_float(key, *dim.values[:2], log=True)
        elif dim.kind == "uniform":
            chosen[key] = trial.suggest_float(
                key, *dim.values[:2], step=dim.values[2] if len(dim.values) > 2 else None
            )
        elif dim.kind == "int":
            chosen[key] = trial.suggest_int(
                key, *dim.values[:2], step=dim.values[2] if len(dim.values) > 2 else 1
            )
        elif dim.kind == "categorical":
            chosen[key] = trial.suggest_categorical(key, list(dim.values))
    base = load_config(spec.base, overrides, [(str(spec.path), spec.config)])
    for key, dim in spec.space.items():
        if dim.kind == "follows":
            section, _, sub = dim.source.partition(".")
            leader = chosen.get(dim.source, getattr(getattr(base, section), sub))
            chosen[key] = dim.mapping[leader]
    return load_config(
        spec.base, overrides, [(str(spec.path), spec.config), (f"{spec.path} trial", chosen)]
    )


def replace_choices(spec: SweepSpec, overrides: tuple[str, ...], problems: list[str]) -> SweepSpec:
    """`-o KEY=[a, b]` on a categorical the sweep searches gives it new choices (e.g. offline
    stand-ins for hub models); the study name then gets a suffix so a study never mixes two sets
    of choices."""
    space, replaced = dict(spec.space), {}
    for o in overrides:
        key, _, text = (part.strip() for part in o.partition("="))
        if key not in spec.varied_keys():
            continue
        try:
            values = yaml.safe_load(text) if text.startswith("[") else None
        except yaml.YAMLError:
            values = None
        dim = space.get(key)
        if dim is None or dim.kind != "categorical" or not isinstance(values, list) or not values:
            problems.append(
                f"-o {o}: the sweep {spec.path} searches {key}; remove the override, "
                f"or give a categorical new choices as a list, e.g. -o '{key}=[a, b]'"
            )
            continue
        space[key] = dataclasses.replace(dim, values=tuple(values))
        replaced[key] = values
    if not replaced:
        return spec
    digest = hashlib.sha1(json.dumps(replaced, sort_keys=True, default=str).encode()).hexdigest()[
        :6
    ]
    return dataclasses.replace(spec, space=space, name=f"{spec.name}-choices-{digest}")


class FixedTrial:
    """A stand-in trial answering each suggestion from `picks`, else the first choice or low end."""

    def __init__(self, picks: dict[str, Any]):
        self.picks = picks

    def suggest_categorical(self, name, choices):
        return self.picks.get(name, choices[0])

    def suggest_float(self, name, low, high, log=False, step=None):
        return self.picks.get(name, low)

    def suggest_int(self, name, low, high, step=1):
        return self.picks.get(name, low)
