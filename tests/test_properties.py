"""Properties, not only examples: generated config trees and `-o` overrides, sweep files and
`textclf train` / `textclf sweep` arguments. Every input either validates or is refused with
InputError whose problems are single lines (the CLI: one stderr line per problem, exit 2), before
any experiment, study, run or file exists; never a traceback.

The default profile is seeded and bounded (derandomized: the same examples every run); the long one
is     HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties.py (docs/reliability.md
records its runs).
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from textclf.config import Config, load_config
from textclf.errors import InputError

settings.register_profile(
    "default",
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

KNOWN = sorted(Config().flat())
# keys: the real ones, near misses, unknown sections, empty parts, unicode
KEYS = st.one_of(
    st.sampled_from(KNOWN),
    st.sampled_from(KNOWN).map(lambda k: k[:-1]),
    st.text(alphabet=string.ascii_lowercase + "._", min_size=0, max_size=20),
    st.text(min_size=1, max_size=12),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="\x00\n\r\t ./\\'\"{}[]:,-=*#!&|%@`~", max_size=20),
    st.just("x" * 10_000),
    st.just(""),
    st.just("hf_" + "a" * 30),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
)
# plausible values for real keys, so that a good share of the examples validate and go on to the
# data
PLAUSIBLE = st.one_of(
    st.integers(-2, 70).map(str),
    st.sampled_from(
        [
            "true",
            "false",
            "0.1",
            "1e-3",
            "0",
            "[]",
            "none",
            "top1",
            "cls",
            "mean",
            "full",
            "cpu",
            "fp32",
        ]
    ),
)
OVERRIDES = st.lists(
    st.one_of(
        st.tuples(KEYS, st.one_of(TEXT, SCALARS.map(str))).map(lambda kv: f"{kv[0]}={kv[1]}"),
        st.tuples(st.sampled_from(KNOWN), PLAUSIBLE).map(lambda kv: f"{kv[0]}={kv[1]}"),
        TEXT,
    ),
    max_size=4,
)


def one_line_problems(error: InputError) -> None:
    event("refused")
    assert error.problems, "an InputError must say what is wrong"
    for problem in error.problems:
        assert isinstance(problem, str) and problem.strip(), error.problems
        assert "\n" not in problem and "\r" not in problem, problem
        assert "Traceback" not in problem, problem


@given(tree=st.dictionaries(KEYS, VALUES, max_size=6), overrides=OVERRIDES)
def test_any_config_delta_and_overrides_validate_or_are_refused_in_lines(tree, overrides):
    try:
        cfg = load_config(None, overrides, [("config.yaml", tree)])
    except InputError as e:
        one_line_problems(e)
    else:
        event("valid")
        assert isinstance(cfg, Config)
        assert all(k in KNOWN for k in tree) and all(
            o.split("=", 1)[0].strip() in KNOWN for o in overrides
        )


@given(
    tree=st.recursive(
        SCALARS,
        lambda inner: st.dictionaries(
            KEYS | st.sampled_from(["data", "model", "train", "tracking"]), inner, max_size=4
        ),
        max_leaves=12,
    )
)
def test_any_yaml_config_file_validates_or_is_refused_in_lines(tree, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True))
    try:
        load_config(path)
        event("valid")
    except InputError as e:
        one_line_problems(e)
        assert all(p.startswith(str(path)) for p in e.problems), e.problems


SAMPLERS = st.one_of(st.sampled_from(["grid", "random", "tpe"]), TEXT)
DIMENSIONS = st.dictionaries(
    st.sampled_from(["loguniform", "uniform", "int", "categorical", "follows", "map", "bogus"]),
    st.one_of(
        VALUES, st.lists(st.one_of(st.integers(-5, 5), st.floats(-1, 1)), min_size=0, max_size=3)
    ),
    max_size=2,
)
SPACES = st.dictionaries(
    st.sampled_from(
        [
            "train.learning_rate",
            "train.epochs",
            "data.max_length",
            "model.freeze",
            "train.batch_size",
        ]
    )
    | KEYS,
    st.one_of(DIMENSIONS, VALUES),
    max_size=3,
)
STUDIES = st.fixed_dictionaries(
    {},
    optional={
        "sampler": SAMPLERS,
        "n_trials": st.one_of(st.integers(-3, 5), TEXT),
        "name": st.one_of(TEXT, st.text(alphabet=string.ascii_letters, min_size=90, max_size=300)),
        "pruner": st.one_of(st.sampled_from(["none", "median", "hyperband"]), TEXT),
        "seed": SCALARS,
        "keep_models": st.one_of(st.sampled_from(["best", "all", "none"]), TEXT),
        "timeout": SCALARS,
        "max_failures": SCALARS,
        "bogus": SCALARS,
    },
)
SPECS = st.fixed_dictionaries(
    {"study": st.one_of(STUDIES, VALUES)},
    optional={
        "space": st.one_of(SPACES, VALUES),
        "objective": st.one_of(
            st.sampled_from(
                ["best_val_accuracy", "best_val_loss", "test_accuracy", "train_time_s"]
            ),
            st.dictionaries(
                st.sampled_from(["best_val_accuracy", "best_val_loss", "x"]),
                st.one_of(st.sampled_from(["maximize", "minimize"]), TEXT),
                max_size=2,
            ),
            VALUES,
        ),
        "grid": st.one_of(st.lists(st.dictionaries(KEYS, SCALARS, max_size=2), max_size=3), VALUES),
        "config": st.one_of(st.dictionaries(KEYS, VALUES, max_size=2), VALUES),
        "extra": VALUES,
    },
)


@given(spec=SPECS)
def test_any_sweep_file_validates_or_is_refused_in_lines(spec, tmp_path_factory, tiny_model):
    from textclf.studies.spec_file import load_spec

    folder = tmp_path_factory.mktemp("sweep")
    (folder / "base.yaml").write_text(
        yaml.safe_dump({"model": {"name": str(tiny_model)}, "data": {"max_length": 32}})
    )
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", **spec}, allow_unicode=True))
    try:
        load_spec(path)
        event("valid")
    except InputError as e:
        one_line_problems(e)


class Validated(Exception):
    """Raised where a run would begin: everything that can refuse the input has run."""


def files_in(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@given(overrides=OVERRIDES)
def test_textclf_train_refuses_in_one_line_or_reaches_the_run_with_nothing_created(
    overrides, cli, tiny_overrides, monkeypatch, tmp_path_factory
):
    """The CLI end to end: bad input is exit 2 with one stderr line per problem and no file created;
    input that validates reaches the point where the MLflow run would start (stopped there)."""
    import textclf.run

    def stop(*args, **kwargs):
        raise Validated

    monkeypatch.setattr(textclf.run.store, "connect", stop)
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    args = [a for o in (*tiny_overrides, *overrides) for a in ("-o", o)]
    try:
        code, _, err = cli("train", *args)
    except Validated:
        event("validated: reached the run")
        assert files_in(work) <= {".textclf"} or not files_in(work)
        return
    event("refused")
    assert code == 2, err[-3000:]
    lines = err.strip().splitlines()
    assert lines and all(line.strip() for line in lines) and "Traceback" not in err, err[-3000:]
    assert not files_in(work), files_in(work)


@given(
    args=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "--n-trials",
                    "--workers",
                    "--storage",
                    "--repeat-best",
                    "--seeds",
                    "--gpus",
                    "--worker-index",
                    "-o",
                    "--register-as",
                ]
            ),
            TEXT,
            st.integers(-3, 3).map(str),
        ),
        max_size=4,
    )
)
def test_textclf_sweep_arguments_are_refused_in_one_line_before_anything_exists(
    args, cli, tiny_sweep, monkeypatch, tmp_path_factory
):
    import textclf.studies.sweep

    def stop(*a, **k):
        raise Validated

    monkeypatch.setattr(textclf.studies.sweep.store, "connect", stop)
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    try:
        code, _, err = cli("sweep", tiny_sweep, *args)
    except Validated:
        event("validated: reached the run")
        return
    event("refused")
    assert code == 2, err[-3000:]
    lines = err.strip().splitlines()  # one per problem; a usage error is one line too
    assert lines and all(line.strip() for line in lines) and "Traceback" not in err, err[-3000:]
    assert not files_in(work), files_in(work)


@pytest.mark.parametrize("name", ["a" * 101, "a/b", "..", ".hidden", "x y", "é" * 101, ""])
def test_names_that_become_paths_follow_one_rule(name):
    from textclf.pathnames import as_path_part, name_problem

    assert name_problem(name) is not None
    assert name_problem("imdb-search_v2.1") is None and name_problem("é" * 100) is None
    # an experiment name is MLflow's: spaces and '/' pass, length and control characters do not
    assert name_problem("IMDB sentiment /Users/a", strict=False) is None
    assert name_problem("a" * 101, strict=False) and name_problem("a\nb", strict=False)
    # a report directory is always a valid name
    assert name_problem(as_path_part(name or "x")) is None
