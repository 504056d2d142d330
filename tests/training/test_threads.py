"""Training threads on a CPU: one per physical core (hyperthreads counted once, within a cgroup
quota) unless $OMP_NUM_THREADS says otherwise; a sweep's CPU workers share the cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textclf.studies.workers import plan
from textclf.training import device as device_mod


def fake_sys(root: Path, cores: list[tuple[int, int]], quota: str | None = None) -> Path:
    """A /sys with one topology per logical CPU: (package, core) pairs."""
    for cpu, (package, core) in enumerate(cores):
        topology = root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
    if quota:
        (root / "fs" / "cgroup").mkdir(parents=True)
        (root / "fs" / "cgroup" / "cpu.max").write_text(quota)
    return root


@pytest.mark.parametrize(
    "cores, quota, expected",
    [
        ([(0, 0), (0, 1)], None, 2),  # this machine kind: 2 cores, 1 thread each
        ([(0, 0), (0, 0), (0, 1), (0, 1)], None, 2),  # 2 cores x 2 hyperthreads
        ([(0, 0), (1, 0)], None, 2),  # core 0 of two sockets: two cores
        ([(0, 0), (0, 1), (0, 2), (0, 3)], "150000 100000\n", 2),  # a 1.5-CPU quota
        ([(0, 0), (0, 1), (0, 2), (0, 3)], "max 100000\n", 4),
    ],
)
def test_physical_cores_count_each_core_once(tmp_path, monkeypatch, cores, quota, expected):
    monkeypatch.setattr(device_mod.os, "sched_getaffinity", lambda pid: set(range(len(cores))))
    assert device_mod.physical_cores(fake_sys(tmp_path, cores, quota)) == expected


def test_omp_num_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert device_mod.cpu_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "nonsense")
    assert device_mod.cpu_threads() == device_mod.physical_cores()


def test_a_cpu_run_sets_torchs_threads_and_a_gpu_run_does_not(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(device_mod, "cpu_threads", lambda: 1)
        device_mod.use_cpu_threads(torch.device("cuda"))
        assert torch.get_num_threads() == before
        device_mod.use_cpu_threads(torch.device("cpu"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("workers, expected", [("1", ["4"]), ("2", ["2", "2"]), ("3", ["1"] * 3)])
def test_cpu_sweep_workers_share_the_cores(monkeypatch, workers, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    environments = plan(workers, None, [], cores=4)
    assert [e["OMP_NUM_THREADS"] for e in environments] == expected
    assert all(e["RAYON_NUM_THREADS"] == e["OMP_NUM_THREADS"] for e in environments)


def test_gpu_workers_and_a_users_thread_count_are_left_alone(monkeypatch):
    assert "OMP_NUM_THREADS" not in plan("2", None, ["0", "1"], cores=4)[0]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert "OMP_NUM_THREADS" not in plan("2", None, [], cores=4)[0]
