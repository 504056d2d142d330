"""Reading a config: defaults <- YAML file <- deltas <- `-o` overrides, each value coerced to its
field's type, then validated. Unknown keys (with a did-you-mean), wrong types and invalid values are
collected and reported together, one `origin: key: problem` line each (InputError, exit 2)."""

from __future__ import annotations

import contextlib
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from textclf.config.checks import validate
from textclf.config.schema import Config, section_types
from textclf.errors import InputError


def load_config(
    path: str | Path | None = None,
    overrides: typing.Sequence[str] = (),
    deltas: typing.Sequence[tuple[str, dict[str, Any]]] = (),
) -> Config:
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
    origins = (("", source), *tuple((k, o) for k, (_, o, _) in delta.items()))
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
        # `model.config: {...}` is one key's mapping
        if isinstance(body, dict) and "." not in str(section):
            flat.update({f"{section}.{k}": v for k, v in body.items()})
        else:
            flat[str(section)] = body  # a dotted key, or reported by _build_sections
    return flat


def read_mapping(path: Path, missing: str, expected: str) -> tuple[dict, str | None]:
    """A YAML file whose top level is a mapping (yaml.safe_load only), or an empty mapping and a
    line saying why not."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = yaml.safe_load(text)
    except FileNotFoundError:
        return {}, f"{path}: file not found; {missing}"
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        return {}, f"{path}: not valid YAML ({' '.join(str(e).split())}); fix the syntax"
    except OSError as e:  # a directory, no permission
        return {}, f"{path}: cannot be read ({e.strerror or e}); {missing}"
    if not text:  # zero bytes (a comments-only file is a deliberate empty delta)
        return {}, f"{path}: the file is empty; write the changes {expected} or leave it out"
    tree = {} if tree is None else tree
    if not isinstance(tree, dict):
        return {}, f"{path}: top level must be a mapping {expected}"
    return tree, None


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    tree, problem = read_mapping(
        path, "pass an existing YAML file to --config", "of sections (data, model, train, tracking)"
    )
    if problem:
        problems.append(problem)
        return {}
    return flatten_tree(tree, str(path), problems)


def _build_sections(delta: dict, problems: list[str]) -> dict[str, Any]:
    types = section_types()
    names = list(types)
    values: dict[str, dict[str, Any]] = {n: {} for n in names}
    hints = {n: typing.get_type_hints(t) for n, t in types.items()}
    for key, (value, origin, raw) in delta.items():
        section, _, sub = key.partition(".")
        if section not in values:
            problems.append(f"{origin}: {key}: unknown section; expected one of {', '.join(names)}")
        elif not sub:
            problems.append(
                f"{origin}: {key}: must be a mapping of keys, e.g. {section}:\\n  key: value"
            )
        elif sub not in hints[section]:
            near = difflib.get_close_matches(sub, list(hints[section]), n=1)
            hint = f"; did you mean {section}.{near[0]}?" if near else ""
            problems.append(f"{origin}: {key}: unknown key{hint}")
        else:
            try:
                values[section][sub] = _coerce(value, hints[section][sub], raw)
            except ValueError as e:
                problems.append(f"{origin}: {key}: {e}, got {value!r}")
    return {n: t(**values[n]) for n, t in types.items()}


def _coerce(value: Any, hint: Any, raw: bool) -> Any:
    """Check `value` against a field's type; an override's raw string is parsed as that type."""
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
        # `freeze: top2` means [top2]; "a,b" (a sweep choice) means [a, b]
        elif isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        # model.config {num_hidden_layers: 4}: [num_hidden_layers=4]
        elif isinstance(value, dict) and item is str:
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
        # not a YAML scalar (a stray ':', '&', a control character): checked as text below
        with contextlib.suppress(yaml.YAMLError):
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
    expected = "a number" if hint is float else "an integer" if hint is int else "true or false"
    raise ValueError(f"must be {expected}")
