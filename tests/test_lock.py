"""deps/constraints.txt, the lock every install of the project uses, and pyproject.toml cannot drift
apart, and this environment is the lock's (so a green suite says which versions it passed with)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import tomllib
from deps.drift import locked, normalise
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "deps" / "constraints.txt"


def requirements() -> list[Requirement]:
    """The core requirements and every extra's, as pyproject.toml states them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    return [Requirement(line) for line in lines]


def test_the_lock_covers_every_pyproject_requirement_within_its_range():
    pins, problems = locked(), []
    for req in requirements():
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        pin = pins.get(normalise(req.name))
        if pin is None:
            problems.append(f"{req.name}: not in the lock")
        elif not req.specifier.contains(Version(pin), prereleases=True):
            problems.append(f"{req.name}: locked {pin}, outside pyproject's {req.specifier}")
    assert not problems, "run bash deps/lock.sh: " + "; ".join(problems)


def test_the_lock_pins_every_line_exactly_and_once():
    lines = [line.split("#")[0].strip() for line in LOCK.read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins and all(
        re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][^\s;]*", p) for p in pins
    ), pins
    names = [normalise(p.split("==")[0]) for p in pins]
    assert len(names) == len(set(names))
    assert "textclf" not in names  # the project itself is installed from the tree, never pinned


def test_the_lock_pins_torch_without_a_build_label():
    """2.13.0, not 2.13.0+cpu: the CPU wheel here and a CUDA build of the same release both
    satisfy it."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", locked()["torch"])


def test_installed_versions_are_the_locks():
    """The README's install (and .ci/run's) installs from the lock: every locked distribution is
    here at its pin (torch compared without its build label).

    deps/latest.sh deselects this test: there they differ on purpose.
    """
    problems = []
    for name, pin in locked().items():
        try:
            have = version(name)
        except PackageNotFoundError:
            problems.append(f"{name}: locked {pin}, not installed")
            continue
        if Version(have).public != Version(pin).public:
            problems.append(f"{name}: locked {pin}, installed {have}")
    assert not problems, (
        "install with the README's command (pip install -c deps/constraints.txt ...): "
        + "; ".join(problems)
    )


def test_every_install_command_uses_the_lock():
    readme = (ROOT / "README.md").read_text()
    installs = [line for line in readme.splitlines() if "pip install" in line and "-e " in line]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pip install" in line]
    docker = [
        line
        for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
        if "pip install" in line
    ]
    assert installs and ci and docker
    assert all("-c deps/constraints.txt" in line for line in installs + ci), installs + ci
    assert all("-c " in line for line in docker), docker
