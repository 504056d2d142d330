"""Which device a run trains on, and in which precision; a device that is not there is bad input,
exit 2."""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from textclf.config import TrainConfig
from textclf.errors import InputError
from textclf.training.ddp import World


def check_device(train: TrainConfig) -> torch.device:
    """train.device as a torch.device, checked before any data or model is loaded."""
    name, where = train.device, f"{train.where('train.device')}: train.device: {train.device}"
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise InputError(
                [
                    f"{where}, but no CUDA device is available "
                    "(torch.cuda.is_available() is False); use auto or cpu"
                ]
            )
        if index >= torch.cuda.device_count():
            raise InputError(
                [
                    f"{where}, but only {torch.cuda.device_count()} CUDA device(s) are "
                    f"visible; use cuda:0..cuda:{torch.cuda.device_count() - 1} or auto"
                ]
            )
    if train.devices > 1 and pick_device(name).type == "cuda":
        visible = torch.cuda.device_count()
        if train.devices > visible:
            raise InputError(
                [
                    f"{train.where('train.devices')}: train.devices: {train.devices}, but "
                    f"{visible} CUDA device(s) are visible; lower train.devices or make more "
                    "GPUs visible (CUDA_VISIBLE_DEVICES, --gpus)"
                ]
            )
    if name == "mps" and not torch.backends.mps.is_available():
        raise InputError(
            [f"{where}, but Apple's MPS backend is not available here; use auto or cpu"]
        )
    return pick_device(name)


def rank_device(device: torch.device, world: World) -> torch.device:
    """One of several ranks on GPUs takes the GPU its LOCAL_RANK names."""
    if world.spread and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", world.rank)))
    return device


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32. auto: on a GPU bf16 where it has it, else fp16; on a CPU bf16 where it
    multiplies bf16 natively (native_cpu_bf16), else fp32 (emulated bf16 is slower than fp32)."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and native_cpu_bf16() else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    """What a run trains in, as its textclf.precision tag says: fp32, bf16 or fp16 (autocast)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def native_cpu_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX tiles, or AVX512-BF16), as torch's own
    cpuinfo reads them; /proc/cpuinfo's flags where this torch cannot say."""
    probes = [getattr(torch.cpu, f"_is_{n}_supported", None) for n in ("amx_tile", "avx512_bf16")]
    if all(callable(p) for p in probes):
        return any(p() for p in probes if p is not None)
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo); empty where there is no such file."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return set()
    listed = re.search(r"^flags\s*:(.*)$", info, re.M)
    return set(listed.group(1).split()) if listed else set()


@contextlib.contextmanager
def tf32(device: torch.device) -> Iterator[None]:
    """fp32 matmuls and convolutions (precision=fp32, and the fp32 parts under autocast) on TF32
    tensor cores for the duration of one run on CUDA, through torch's current API; restored after,
    so nothing else in the process (a Trainer run in the same benchmark) inherits it."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    # set on torch.backends.cudnn's module object at import, unknown to the type stubs
    conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
    saved = matmul.fp32_precision, conv.fp32_precision
    matmul.fp32_precision = conv.fp32_precision = "tf32"
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


def physical_cores(sys_root: Path = Path("/sys")) -> int:
    """The cores this process may run on, hyperthreads of one core counted once, within the
    container's CPU quota (cgroup v2 cpu.max) where one is set."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = set()
    for cpu in allowed or range(os.cpu_count() or 1):
        topology = sys_root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
        try:
            cores.add(
                ((topology / "physical_package_id").read_text(), (topology / "core_id").read_text())
            )
        except OSError:  # no topology: each CPU its own core
            cores.add(("cpu", str(cpu)))
    try:
        quota, period = (sys_root / "fs" / "cgroup" / "cpu.max").read_text().split()[:2]
        limit = math.ceil(int(quota) / int(period)) if quota != "max" else len(cores)
    except (OSError, ValueError):
        limit = len(cores)
    return max(1, min(len(cores), limit))


def cpu_threads() -> int:
    """Intra-op threads for training on a CPU: $OMP_NUM_THREADS where the user (or a sweep that
    shares the cores among its workers) set it, else one per physical core: a hyperthread adds
    no matrix units, and more threads than cores only wait on each other."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else physical_cores()


def use_cpu_threads(device: torch.device) -> None:
    """Set torch's intra-op threads for a run on a CPU (cpu_threads); a GPU run keeps torch's."""
    if device.type == "cpu" and torch.get_num_threads() != cpu_threads():
        torch.set_num_threads(cpu_threads())
