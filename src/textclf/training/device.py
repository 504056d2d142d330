"""Which device a run trains on, and in which precision; a device that is not there is bad input,
exit 2."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from textclf.config import TrainConfig
from textclf.errors import InputError


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
    if name == "mps" and not torch.backends.mps.is_available():
        raise InputError(
            [f"{where}, but Apple's MPS backend is not available here; use auto or cpu"]
        )
    return pick_device(name)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32. auto: bf16 where the GPU supports it, else fp16; fp32 on CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


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
