"""Reading the lock, and what this environment has that deps/constraints.txt does not: the "latest" check's
report (deps/latest.sh). `locked` is the one reader of the lock (bench/device/imports.py, tests/test_lock.py).

    python deps/drift.py deps/constraints.txt

One line per distribution whose installed version differs from its pin, per one installed but not locked,
per one locked but not installed; the count at the end. Exits 0: drift is the finding, not an error.
"""
from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

LOCK = Path(__file__).with_name("constraints.txt")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path = LOCK) -> dict[str, str]:
    """name -> pinned version of every `name==version` line (pip-compile's `# via` comments skipped)."""
    pins = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {normalise(pin.split("==")[0]): pin.split("==")[1] for pin in pins if "==" in pin}


def main() -> None:
    pins = locked(Path(sys.argv[1]))
    have = {normalise(d.metadata["Name"]): d.version for d in distributions()}
    have.pop("textclf", None)
    lines = [f"  {n}: lock {pins[n]} -> installed {have[n]}" for n in sorted(pins.keys() & have.keys())
             if have[n].split("+")[0] != pins[n].split("+")[0]]
    lines += [f"  {n}: new, {have[n]} (not in the lock)" for n in sorted(have.keys() - pins.keys())
              if n not in ("pip", "setuptools", "wheel")]
    lines += [f"  {n}: locked {pins[n]}, no longer installed" for n in sorted(pins.keys() - have.keys())]
    print(f"drift from {sys.argv[1]}: {len(lines)} distribution(s)", *lines, sep="\n")


if __name__ == "__main__":
    main()
