"""Every benchmark imports and parses its options as `python -m bench.<name>.run` would (no run: benchmarks
measure speed, and tests never time anything)."""
from __future__ import annotations

import importlib
import sys

import pytest
from conftest import ROOT

NAMES = sorted(p.parent.name for p in (ROOT / "bench").glob("*/run.py"))


@pytest.mark.parametrize("name", NAMES)
def test_each_benchmark_runs_as_a_module_and_documents_its_command(name, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT))
    module = importlib.import_module(f"bench.{name}.run")
    assert f"python -m bench.{name}.run" in module.__doc__
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as done:
        module.main()
    assert done.value.code == 0 and "--model" in capsys.readouterr().out
