"""What the GPU machine lacks, decided once and checked by running: the wheelhouse
bench/device/prepare.sh carries is the dependency closure of needs.txt (as resolved in this venv,
pinned to the project's lock, deps/constraints.txt, which this venv was installed from) minus the
machine's own packages (device_has.txt) minus what needs.txt marks optional (`-name`). Running a
benchmark through this module refuses every top-level import owned by a distribution outside
device_has + wheelhouse, exactly as that machine would: libraries that import something optionally
(transformers: PIL; mlflow: scipy, IPython) take their fallback, and a real gap fails here, in CI,
instead of on the GPU machine.

    python -m bench.device.imports wheels
        the carried `name==version` lines
    python -m bench.device.imports check-wheels DIR
        every carried one has its wheel in DIR
    python -m bench.device.imports run IMPORTS_FILE MODULE [ARGS]
        run MODULE as `python -m` would, restricted; appends the distributions it imported; exits
        4 if it imported a carried package's file that no wheel in .device/part1 has
"""

from __future__ import annotations

import atexit
import os
import re
import runpy
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from deps.drift import locked, normalise
from packaging.requirements import Requirement

HERE = Path(__file__).parent


def listed(path: Path) -> list[str]:
    """The names of a list file: one per line, # comments."""
    return [
        normalise(line.split("#")[0].strip())
        for line in path.read_text().splitlines()
        if line.split("#")[0].strip()
    ]


def closure(names: list[str]) -> set[str]:
    """The names and everything they require (no extras, this platform's markers), from installed
    metadata."""
    seen, todo = set(), list(names)
    while todo:
        name = normalise(todo.pop())
        if name in seen:
            continue
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            raise SystemExit(
                f"bench/device/needs.txt: {name} is not installed in this venv; install it or "
                f"drop it"
            ) from None
        seen.add(name)
        todo += [
            r.name
            for r in map(Requirement, requires)
            if not r.marker or r.marker.evaluate({"extra": ""})
        ]
    return seen


def carried() -> dict[str, str]:
    """Distribution -> locked version of every wheel the GPU machine needs carried."""
    needs = listed(HERE / "needs.txt")
    optional = {n[1:] for n in needs if n.startswith("-")}
    wanted = (
        closure([n for n in needs if not n.startswith("-")])
        - set(listed(HERE / "device_has.txt"))
        - optional
    )
    pins = locked()
    stray = [
        f"{name} (lock {pins.get(name)}, venv {distribution(name).version})"
        for name in sorted(wanted)
        if pins.get(name) != distribution(name).version
    ]
    if stray:  # the dry run tests this venv's packages: carrying other versions would test nothing
        raise SystemExit(
            f"bench/device: this venv is not the lock's: {', '.join(stray)}; reinstall with the "
            f"README's command (pip install -c deps/constraints.txt ...)"
        )
    return {name: pins[name] for name in sorted(wanted)}


def refuse_absent(allowed: set[str]) -> list[str]:
    """Make every top-level module none of whose owning distributions is allowed unimportable,
    the way Python spells "not installed" to everyone: `import x` raises ModuleNotFoundError
    ("import of x halted; None in sys.modules") and importlib.util.find_spec returns None (torch
    probes modules that way). A namespace package (google, opentelemetry) stays when any part is
    allowed: wheels carry whole closures."""
    refused = sorted(
        top
        for top, owners in packages_distributions().items()
        if top.isidentifier() and not {normalise(d) for d in owners} & allowed
    )
    for top in refused:
        sys.modules.setdefault(top, None)  # type: ignore[assignment]  # already imported: on the machine too
    return refused


def imported() -> set[str]:
    owners = packages_distributions()
    return {
        normalise(d)
        for top, module in list(sys.modules.items())
        if module is not None and "." not in top
        for d in owners.get(top, ())
    }


def outside_wheels(wheels: Path) -> list[str]:
    """Imported module files of carried packages that no carried wheel contains: a distribution
    here may hold more than the one carried (mlflow here, mlflow-skinny there), so those imports
    would fail there."""

    def untagged(
        path: str,
    ) -> str:  # cd.cpython-311-x86_64-linux-gnu.so here is cd.cpython-312-... there
        return re.sub(r"\.(cpython-\d+[\w-]*|abi3)\.so$", ".so", path)

    names = set()
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            names.update(map(untagged, z.namelist()))
    tops = {top.split("/")[0] for top in names}
    missing = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if "site-packages/" in path:
            relative = untagged(path.split("site-packages/", 1)[1])
            if relative.split("/")[0] in tops and relative not in names:
                missing.append(relative)
    return sorted(set(missing))


def run(out: str, module: str, args: list[str], wheels: Path) -> None:
    # textclf: from src/
    refuse_absent(set(listed(HERE / "device_has.txt")) | set(carried()) | {"textclf"})

    def record() -> None:
        with Path(out).open("a") as found:
            found.writelines(f"{name}\n" for name in sorted(imported()))
        missing = outside_wheels(wheels)
        if missing:
            print(
                f"imported from files no carried wheel has ({len(missing)}): "
                f"{', '.join(missing[:10])}",
                file=sys.stderr,
                flush=True,
            )
            # the benchmark "passed" here only because this venv has more than that machine
            os._exit(4)

    atexit.register(record)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def check_wheels(directory: Path) -> None:
    """The wheelhouse holds a wheel of the exact version for every carried distribution."""
    have = {
        (normalise(w.name.split("-")[0]), w.name.split("-")[1]) for w in directory.glob("*.whl")
    }
    missing = [
        f"{name}=={version}" for name, version in carried().items() if (name, version) not in have
    ]
    if missing:
        raise SystemExit(
            f"{directory}: no wheel for {', '.join(missing)}: run bench/device/prepare.sh again"
        )
    print(f"{directory}: a wheel for each of the {len(carried())} carried distributions")


def main() -> None:
    if sys.argv[1:2] == ["wheels"]:
        print("\n".join(f"{name}=={version}" for name, version in carried().items()))
    elif sys.argv[1:2] == ["check-wheels"] and len(sys.argv) == 3:
        check_wheels(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["run"] and len(sys.argv) >= 4:
        run(sys.argv[2], sys.argv[3], sys.argv[4:], Path(".device/part1/wheels"))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
