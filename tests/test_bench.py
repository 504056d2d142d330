"""Every benchmark imports and parses its options as `python -m bench.<name>.run` would (no run:
benchmarks measure speed, and tests never time anything)."""

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


def test_the_device_import_guard_makes_a_missing_package_look_uninstalled(tmp_path):
    """bench/device/imports.py: what the GPU machine lacks is unimportable the way Python says "not
    installed" (torch probes with find_spec, libraries catch ImportError), and what it has still
    imports."""
    import subprocess

    probe = (
        "import importlib.util, sys\n"
        "from bench.device.imports import refuse_absent\n"
        "refused = refuse_absent({'numpy', 'textclf'})\n"
        "assert 'sklearn' in refused and 'numpy' not in refused\n"
        "assert importlib.util.find_spec('sklearn') is None\n"
        "try:\n    import sklearn\nexcept ImportError:\n    print('sklearn refused')\n"
        "import numpy\nprint('numpy imported')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["sklearn refused", "numpy imported"]


def test_the_device_wheelhouse_is_the_closure_of_needs_minus_what_the_machine_has(
    tmp_path, monkeypatch
):
    """needs.txt's closure, pinned to this venv's versions, minus device_has.txt; check-wheels names
    every carried distribution it has no wheel for."""
    monkeypatch.syspath_prepend(str(ROOT))
    from importlib.metadata import version

    from bench.device import imports

    carried = imports.carried()
    assert carried["mlflow-skinny"] == version("mlflow-skinny") and "sqlalchemy" in carried
    # torch, pandas: not carried
    assert not set(carried) & set(imports.listed(imports.HERE / "device_has.txt"))
    assert "torch" not in carried and "pandas" not in carried
    (tmp_path / f"mlflow_skinny-{carried['mlflow-skinny']}-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(SystemExit, match=r"no wheel for .*sqlalchemy=="):
        imports.check_wheels(tmp_path)


def test_the_dry_run_notices_imports_from_files_the_carried_wheels_lack(tmp_path, monkeypatch):
    """mlflow here, mlflow-skinny there: a module file of a carried package that its wheel lacks is
    named."""
    import zipfile

    import numpy  # noqa: F401  imported: its files are in sys.modules

    monkeypatch.syspath_prepend(str(ROOT))
    from bench.device.imports import outside_wheels

    with zipfile.ZipFile(tmp_path / "numpy-0-cp312-cp312-manylinux_2_28_x86_64.whl", "w") as z:
        z.writestr("numpy/__init__.py", "")  # a wheel with less of numpy than this venv imported
    missing = outside_wheels(tmp_path)
    assert (
        missing
        and all(m.startswith("numpy/") for m in missing)
        and "numpy/__init__.py" not in missing
    )


def test_sizes_levers_replace_one_piece_and_put_it_back(tiny_model, monkeypatch):
    """bench/sizes' levers without a config key: the 2D-mask path and the unfused optimizer, each
    only inside `patched`."""
    import torch
    from transformers import AutoModelForSequenceClassification

    monkeypatch.syspath_prepend(str(ROOT))
    from bench.sizes import run as sizes
    from textclf.config import load_config
    from textclf.model import build
    from textclf.training import loop

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    cfg = load_config(None, [f"model.name={tiny_model}"])
    before = build.takes_4d_mask(model, cfg.model)
    with sizes.patched("no_4d_masks"):
        assert build.takes_4d_mask(model, cfg.model) is False
    with sizes.patched("unfused_adamw"):
        optimizer = loop.make_optimizer(model, cfg.train, torch.device("cpu"))
        assert not optimizer.param_groups[0]["fused"]
    assert build.takes_4d_mask(model, cfg.model) == before
    assert loop.make_optimizer(model, cfg.train, torch.device("cpu")).param_groups[0]["fused"]


def test_sizes_compiles_only_at_the_sizes_named_and_reports_speedups_per_cell(monkeypatch):
    import argparse

    monkeypatch.syspath_prepend(str(ROOT))
    from bench.sizes import run as sizes

    args = argparse.Namespace(
        sizes="base,large",
        lengths="256,512",
        levers="default,compile,batch_x2",
        compile_sizes="base",
        lever_sizes="all",
    )
    assert sizes.cells(args) == [
        ("base", 256, "default"),
        ("base", 256, "compile"),
        ("base", 256, "batch_x2"),
        ("base", 512, "default"),
        ("base", 512, "compile"),
        ("base", 512, "batch_x2"),
        ("large", 256, "default"),
        ("large", 256, "batch_x2"),
        ("large", 512, "default"),
        ("large", 512, "batch_x2"),
    ]
    args.lever_sizes = "base"  # large: the default cells only
    assert [c for c in sizes.cells(args) if c[0] == "large"] == [
        ("large", 256, "default"),
        ("large", 512, "default"),
    ]
    rows = [
        {
            "size": "base",
            "length": 512,
            "lever": "default",
            "side": "textclf",
            "train_samples_per_s": 90.0,
        },
        {
            "size": "base",
            "length": 512,
            "lever": "trainer_defaults",
            "side": "hf_trainer",
            "train_samples_per_s": 50.0,
        },
        {
            "size": "large",
            "length": 512,
            "lever": "default",
            "side": "textclf",
            "error": "out of memory",
        },
        {
            "size": "large",
            "length": 512,
            "lever": "trainer_defaults",
            "side": "hf_trainer",
            "train_samples_per_s": 20.0,
        },
    ]
    assert sizes.speedups(rows) == {"base@512": 1.8}  # no ratio for a cell that ran out of memory


def test_the_device_call_refuses_steps_it_does_not_know_before_anything_runs(tmp_path):
    import subprocess

    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "device" / "run.sh"), "--steps", "smoke,p9"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2 and "p9 is not one of smoke, sizes, p1, p3" in done.stderr
