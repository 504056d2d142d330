"""The checks of a read sweep file: the study's settings (sampler, pruner, keep_models, grid
rules), its `follows` rules, and every trial config the space can produce (each grid point,
categorical choice and range end). Each returns `file: key: problem` lines; spec_file.py reports
them all at once."""

from __future__ import annotations

import difflib
from typing import Any

from textclf.config import Config
from textclf.errors import InputError
from textclf.pathnames import name_problem
from textclf.studies.spec import GRID_POINT, KEEP_MODELS, FixedTrial, SweepSpec, trial_config
from textclf.studies.strategies import PRUNERS, SAMPLERS
from textclf.training.metrics import RUNNING


def check_study(spec: SweepSpec, where: str) -> list[str]:
    """The study's settings: its names, its pruner, the grid rules and the numbers."""
    problems = [
        f"{where}: study.{key}: must be one of {', '.join(choices)}, got {value!r}"
        for key, value, choices in (
            ("sampler", spec.sampler, SAMPLERS),
            ("keep_models", spec.keep_models, KEEP_MODELS),
            ("pruner", spec.pruner, PRUNERS),
        )
        if value not in choices
    ]
    if spec.pruner != "none" and len(spec.objectives) > 1:
        problems.append(
            f"{where}: study.pruner: optuna cannot prune multi-objective studies; use none"
        )
    elif spec.pruner != "none" and spec.objectives[0][0] not in RUNNING:
        problems.append(
            f"{where}: study.pruner: the objective {spec.objectives[0][0]} has no per-epoch value "
            f"to prune on; use one of {', '.join(RUNNING)}, or pruner none"
        )
    if name_problem(spec.name):
        problems.append(f"{where}: study.name: {name_problem(spec.name)}")
    if not isinstance(spec.pruner_args, dict):
        problems.append(f"{where}: study.pruner_args: must be a mapping of optuna pruner arguments")
    return problems + _check_grid(spec, where) + _check_numbers(spec, where)


def _check_grid(spec: SweepSpec, where: str) -> list[str]:
    if spec.sampler != "grid":
        return [f"{where}: grid: an explicit grid needs study.sampler: grid"] * bool(spec.grid)
    problems = []
    ranged = [k for k, d in spec.space.items() if d.kind not in ("categorical", "follows")]
    if ranged or (spec.grid and any(d.kind == "categorical" for d in spec.space.values())):
        problems.append(
            f"{where}: space: a grid takes categorical dimensions or an explicit grid list (with "
            f"follows rules), not both and not ranges ({', '.join(ranged) or 'both'})"
        )
    if not spec.grid_size():
        problems.append(
            f"{where}: grid: the grid sampler needs a grid list or categorical dimensions"
        )
    return problems


def _check_numbers(spec: SweepSpec, where: str) -> list[str]:
    problems = [
        f"{where}: study.{key}: must be a whole number >= {least}, got {value!r}"
        for key, value, least in (
            ("retries", spec.retries, 0),
            ("max_failures", spec.max_failures, 1),
            ("seed", spec.seed, 0),
        )
        if not isinstance(value, int) or isinstance(value, bool) or value < least
    ]
    problems += [
        f"{where}: study.{key}: must be a positive number, got {value!r}"
        for key, value in (
            ("n_trials", spec.n_trials),
            ("timeout", spec.timeout),
            ("heartbeat_s", spec.heartbeat_s),
        )
        if value is not None
        and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0)
    ]
    if spec.sampler != "grid" and spec.n_trials is None and spec.timeout is None:
        problems.append(
            f"{where}: study.n_trials: set n_trials or timeout for a {spec.sampler} sampler"
        )
    return problems


def check_follows(spec: SweepSpec, where: str) -> list[str]:
    """A `follows` leader must be a config key, and rules must not follow each other in a circle."""
    known = list(Config().flat())
    problems, cycles = [], []
    for key, dim in spec.space.items():
        if dim.kind != "follows":
            continue
        if dim.source not in known:
            near = difflib.get_close_matches(dim.source, known, n=1)
            hint = (
                f"did you mean {near[0]}?" if near else "name a config key such as data.max_length"
            )
            problems.append(f"{where}: space.{key}: follows {dim.source}: unknown key; {hint}")
        chain = [key]
        while (
            chain[-1] in spec.space
            and spec.space[chain[-1]].kind == "follows"
            and chain.count(chain[-1]) == 1
        ):
            chain.append(spec.space[chain[-1]].source)
        if chain[-1] == key and len(chain) > 1 and set(chain) not in cycles:  # each cycle once
            cycles.append(set(chain))
            problems.append(
                f"{where}: space: follows rules form a cycle: {' -> '.join(chain)}; "
                "search or fix one of its keys instead"
            )
    return problems


def check_trials(spec: SweepSpec, overrides: tuple[str, ...]) -> list[str]:
    probes: list[dict[str, Any]] = [{}]  # the trial configs to check, as choices per key
    probes += [{GRID_POINT: i} for i in range(1, len(spec.grid))]
    for key, dim in spec.space.items():
        if dim.kind == "categorical":
            probes += [{key: v} for v in dim.values[1:]]
        elif dim.kind != "follows":
            probes.append({key: dim.values[1]})
    problems: list[str] = []
    for picks in probes:
        try:
            trial_config(spec, FixedTrial(picks), overrides)
        except InputError as e:
            problems += [p for p in e.problems if p not in problems]
        except KeyError as e:  # a follows map without the leader's value
            problems.append(f"{spec.path}: space: a follows map has no entry for {e.args[0]!r}")
    return problems
