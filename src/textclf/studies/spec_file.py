"""Reading a sweep file into a SweepSpec: every problem of the file, then of every trial config the
space can produce (each grid point, categorical choice and range end), reported at once as `file:
key: problem`."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from textclf.config import flatten_tree, read_mapping
from textclf.errors import InputError
from textclf.studies.spec import (
    KINDS,
    STUDY_KEYS,
    SWEEP_ONLY,
    TOP_KEYS,
    Dimension,
    SweepSpec,
    replace_choices,
)
from textclf.studies.spec_checks import check_follows, check_study, check_trials
from textclf.training.metrics import default_direction
from textclf.training.summary import DEFAULT_OBJECTIVE, FINAL_METRICS


def load_spec(path: str | Path, overrides: tuple[str, ...] = ()) -> SweepSpec:
    """Read and check a sweep file; InputError lists every problem. Trial configs are validated too:
    every grid point, every categorical choice and both ends of every range."""
    path, problems = Path(path), []
    where = str(path)
    tree, problem = read_mapping(
        path, "pass a sweep file such as sweeps/quickstart.yaml", f"with keys {', '.join(TOP_KEYS)}"
    )
    if problem:
        raise InputError([problem])
    problems += _unknown(where, "", tree, TOP_KEYS)
    study = tree.get("study") or {}
    if not isinstance(study, dict):
        problems.append(f"{where}: study: must be a mapping with keys {', '.join(STUDY_KEYS)}")
        study = {}
    problems += _unknown(where, "study.", study, STUDY_KEYS)
    base = _base(path, tree.get("base"), problems)
    # the study's settings and the file's top-level switches, where given; SweepSpec's field
    # defaults stand for the rest (written once, there)
    given = {k: v for k, v in study.items() if k in STUDY_KEYS and k != "name" and v is not None}
    if "objective" in tree:
        given["objectives"] = _objectives(tree["objective"], where, problems)
    if "retry_oom" in tree:
        given["retry_oom"] = bool(tree["retry_oom"])
    spec = SweepSpec(
        path=path,
        base=base,
        config=flatten_tree(tree.get("config") or {}, f"{where}: config", problems),
        name=str(study.get("name") or path.stem),
        space=_space(tree.get("space") or {}, where, problems),
        grid=_grid(tree.get("grid") or [], where, problems),
        **given,
    )
    problems += check_study(spec, where) + check_follows(spec, where)
    spec = replace_choices(spec, overrides, problems)
    if not problems:
        problems += check_trials(spec, overrides)
    if problems:
        raise InputError(problems)
    return spec


def _base(path: Path, name: Any, problems: list[str]) -> Path | None:
    """The base config file, relative to the sweep file; a sweep file is not a config."""
    if not name:
        return None
    base = (path.parent / str(name)).resolve()
    if not base.is_file():
        problems.append(f"{path}: base: {name} not found (paths are relative to the sweep file)")
        return None
    tree, problem = read_mapping(base, "", "")
    if problem:
        return base  # load_config reports it with its own line
    if set(tree) & set(SWEEP_ONLY):
        problems.append(
            f"{path}: base: {name} is a sweep file; base names a config file (sections "
            "data, model, train, tracking), e.g. ../configs/quickstart.yaml"
        )
        return None
    return base


def _unknown(where: str, prefix: str, tree: dict, known: tuple[str, ...]) -> list[str]:
    out = []
    for key in tree:
        near = difflib.get_close_matches(str(key), known, n=1)
        if key not in known:
            hint = (
                f"did you mean {prefix}{near[0]}?"
                if near
                else f"expected one of {', '.join(known)}"
            )
            out.append(f"{where}: {prefix}{key}: unknown key; {hint}")
    return out


def _objectives(value: Any, where: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    if isinstance(value, str):
        if default_direction(value) is None:
            problems.append(
                f"{where}: objective: {value} has no better end (a loss ratio near 1 "
                f"is healthy); write {{{value}: maximize}} or {{{value}: minimize}}"
            )
        value = {value: default_direction(value) or "maximize"}
    if not isinstance(value, dict) or not value:
        problems.append(
            f"{where}: objective: give a metric name or {{metric: maximize|minimize, ...}}"
        )
        return (DEFAULT_OBJECTIVE,)
    for metric, direction in value.items():
        if direction not in ("maximize", "minimize"):
            problems.append(
                f"{where}: objective.{metric}: must be maximize or minimize, got {direction!r}"
            )
        if str(metric).startswith("test_"):
            problems.append(
                f"{where}: objective.{metric}: selecting on the test set is not "
                "allowed (it would no longer measure generalisation); use a validation "
                "metric such as best_val_accuracy"
            )
        elif metric not in FINAL_METRICS:
            near = difflib.get_close_matches(str(metric), FINAL_METRICS, n=1)
            hint = f"did you mean {near[0]}?" if near else "e.g. best_val_accuracy or best_val_loss"
            problems.append(f"{where}: objective.{metric}: not a metric textclf runs log; {hint}")
    return tuple(value.items())


def _space(tree: Any, where: str, problems: list[str]) -> dict[str, Dimension]:
    if not isinstance(tree, dict):
        problems.append(f"{where}: space: must map config keys (section.key) to dimensions")
        return {}
    space = {}
    for key, body in tree.items():
        at = f"{where}: space.{key}"
        if not isinstance(body, dict) or not (set(body) & set(KINDS)):
            problems.append(f"{at}: must be one of {{{': ..., '.join(KINDS)}: ...}}")
            continue
        kind = next(k for k in KINDS if k in body)
        value = body[kind]
        if kind == "follows":
            mapping = body.get("map")
            if not isinstance(mapping, dict) or not mapping:
                problems.append(f"{at}: follows needs map: {{leader value: value, ...}}")
                continue
            space[key] = Dimension(kind, source=str(value), mapping=mapping)
        elif kind == "categorical":
            if not isinstance(value, list) or not value:
                problems.append(f"{at}: categorical needs a non-empty list of choices")
                continue
            # optuna stores plain values only: a list choice (freeze patterns) travels as "a,b"
            space[key] = Dimension(
                kind, tuple(",".join(map(str, v)) if isinstance(v, list) else v for v in value)
            )
        else:
            numbers = _range(kind, value, at, problems)
            if numbers:
                space[key] = Dimension(kind, numbers)
    for key, dim in space.items():
        if (
            dim.kind == "follows"
            and dim.source in space
            and space[dim.source].kind == "categorical"
        ):
            missing = [v for v in space[dim.source].values if v not in dim.mapping]
            if missing:
                problems.append(
                    f"{where}: space.{key}: map has no value for {dim.source} = "
                    f"{', '.join(map(str, missing))}"
                )
    return space


def _range(kind: str, value: Any, at: str, problems: list[str]) -> tuple | None:
    """[low, high] or [low, high, step] of a uniform, int or loguniform dimension; None if
    invalid."""
    numbers = value if isinstance(value, list) else []
    ok = len(numbers) in (2, 3) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
    )
    if not ok or numbers[0] >= numbers[1] or (kind == "loguniform" and numbers[0] <= 0):
        problems.append(
            f"{at}: {kind} needs [low, high] with low < high"
            + (" and low > 0" if kind == "loguniform" else "")
            + f", got {value!r}"
        )
        return None
    if len(numbers) == 3 and (kind == "loguniform" or numbers[2] <= 0):
        problems.append(
            f"{at}: loguniform takes no step; use [low, high]"
            if kind == "loguniform"
            else f"{at}: {kind} step must be > 0, got {numbers[2]!r}"
        )
        return None
    return tuple(numbers)


def _grid(points: Any, where: str, problems: list[str]) -> tuple[dict[str, Any], ...]:
    if not isinstance(points, list) or not all(isinstance(p, dict) and p for p in points):
        problems.append(f"{where}: grid: must be a list of {{section.key: value, ...}} points")
        return ()
    return tuple(flatten_tree(p, f"{where}: grid[{i}]", problems) for i, p in enumerate(points))
