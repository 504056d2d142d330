"""train.precision=auto on a CPU: bf16 autocast where the CPU multiplies bf16 natively (AMX or
AVX512-BF16, as torch's cpuinfo or /proc/cpuinfo reads it), fp32 elsewhere; the run says which
(textclf.precision). Both kinds of CPU are simulated: the machine running the tests has one."""

from __future__ import annotations

import mlflow
import pytest
import torch

from textclf.training import device as device_mod
from textclf.training import flops
from textclf.training.device import autocast_dtype, native_cpu_bf16, precision_name

CPU = torch.device("cpu")


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, None)])
def test_auto_on_a_cpu_is_bf16_only_where_it_is_native(monkeypatch, native, expected):
    monkeypatch.setattr(device_mod, "native_cpu_bf16", lambda: native)
    assert autocast_dtype("auto", CPU) is expected
    # what the user names explicitly stays what they named
    assert autocast_dtype("fp32", CPU) is None
    assert autocast_dtype("bf16", CPU) is torch.bfloat16


@pytest.mark.parametrize(
    "amx, avx512_bf16, expected",
    [(True, False, True), (False, True, True), (False, False, False), (True, True, True)],
)
def test_native_bf16_reads_torchs_cpuinfo(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert native_cpu_bf16() is expected


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"avx512f", "amx_tile", "amx_bf16"}, True),  # Sapphire Rapids
        ({"avx512f", "avx512_bf16"}, True),  # Cooper Lake
        ({"avx512f", "avx512_vnni", "avx512bw"}, False),  # this machine kind on 2026-12-07
        ({"avx2", "fma"}, False),
    ],
)
def test_without_torchs_probe_the_kernels_flags_decide(monkeypatch, flags, expected):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: flags)
    assert native_cpu_bf16() is expected


def test_cpu_flags_reads_this_machine():
    flags = device_mod.cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags here")
    assert "fpu" in flags or "sse2" in flags or "fp" in flags


def test_bf16_peak_counts_the_matrix_units(monkeypatch):
    monkeypatch.setattr(flops, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    fp32, bf16 = flops.cpu_peak_flops(None), flops.cpu_peak_flops(torch.bfloat16)
    if fp32 is None:
        pytest.skip("no clock in /proc/cpuinfo here")
    assert bf16 == pytest.approx(16 * fp32)  # 1,024 against 64 FLOPs per cycle and core


@pytest.mark.parametrize("native", [True, False], ids=["amx-cpu", "avx512-only-cpu"])
def test_train_logs_the_resolved_precision(cli, tiny_overrides, tracking_uri, monkeypatch, native):
    """A real run at precision auto: bf16 autocast on a CPU that has it (the run trains and ends
    FINISHED under it), fp32 on one that does not; the param stays what the user chose."""
    monkeypatch.setattr(device_mod, "native_cpu_bf16", lambda: native)
    overrides = [o for o in tiny_overrides if not o.startswith("train.epochs")]
    code, _, err = cli(
        "train",
        "--tracking-uri",
        tracking_uri,
        *[a for o in [*overrides, "train.epochs=1"] for a in ("-o", o)],
    )
    assert code == 0, err
    mlflow.set_tracking_uri(tracking_uri)
    experiment = next(o.split("=", 1)[1] for o in overrides if o.startswith("tracking.exp"))
    [run] = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    assert run.info.status == "FINISHED"
    assert run.data.params["train.precision"] == "auto"
    assert run.data.tags["textclf.precision"] == ("bf16" if native else "fp32")
    assert precision_name(torch.bfloat16 if native else None) == run.data.tags["textclf.precision"]
