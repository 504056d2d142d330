"""Model FLOPs utilisation (MFU): the training FLOPs the model needs per real token, times real tokens per
second, over the device's peak.

FLOPs per trained token = 6 * N + 12 * L * d * T (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022, app. B):
N = non-embedding parameters (weights of the encoder layers and the head: 2N forward, 4N backward),
L layers, d hidden size, T the mean real sequence length (attention scores and values). Padding, frozen
layers (whose weight gradients are skipped) and recomputation do not change this "model FLOPs" count, so
MFU compares runs of one model across settings; it is not the hardware's measured FLOP rate.

Peak: dense tensor-core FLOP/s of the GPU from its data sheet for the run's precision (bf16/fp16, or TF32
for fp32 matmuls); on CPU, cores x clock x FLOPs per cycle (AVX-512: 64 fp32, AVX2+FMA: 32, else 8), an
estimate. `TEXTCLF_PEAK_TFLOPS` overrides either.
"""
from __future__ import annotations

import os
import re

import torch

# dense (no sparsity) TFLOP/s from the vendors' data sheets: (16-bit, TF32)
_GPU_PEAKS = {"H200": (989.4, 494.7), "H100 SXM": (989.4, 494.7), "H100 80GB HBM3": (989.4, 494.7),
              "H100 NVL": (835.0, 417.5), "H100 PCIe": (756.0, 378.0), "H100": (756.0, 378.0),
              "A100": (312.0, 156.0), "L40S": (362.1, 181.0), "L4": (121.0, 60.0), "A10": (125.0, 62.5),
              "V100": (125.0, 15.7), "T4": (65.0, 8.1)}


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n and "prompt" not in n)


def flops_per_token(model: torch.nn.Module, config, mean_length: float) -> float:
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
    return 6.0 * non_embedding_params(model) + 12.0 * layers * hidden * mean_length


def peak_flops(device: torch.device, dtype: torch.dtype | None) -> float | None:
    """The device's peak FLOP/s for this precision; None when unknown (then no mfu is logged)."""
    if os.environ.get("TEXTCLF_PEAK_TFLOPS"):
        return float(os.environ["TEXTCLF_PEAK_TFLOPS"]) * 1e12
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (half, tf32) in _GPU_PEAKS.items():
            if key in name:
                return (half if dtype in (torch.bfloat16, torch.float16) else tf32) * 1e12
        return None
    return cpu_peak_flops()


def cpu_peak_flops() -> float | None:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return None
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", info)
    if not mhz:
        return None
    flags = set(re.search(r"flags\s*:(.*)", info).group(1).split()) if "flags" in info else set()
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 8
    return torch.get_num_threads() * float(mhz.group(1)) * 1e6 * per_cycle
