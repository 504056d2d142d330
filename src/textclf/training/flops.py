"""Model FLOPs utilisation (MFU): the training FLOPs the model needs per real token, times real
tokens per
second, over the device's peak.

Training FLOPs per real token, counting only the work that runs (docs/methodology.md):

    2 N                      forward through every parameter
  + 2 N_above(k)             backward to the activations, from the top down to the lowest trainable
  block k
  + 2 N_trained              weight gradients, for trainable weights only
  + (4 L + 8 (L - k)) d T    attention scores and values: forward in every block, backward above k

N counts the encoder blocks and what sits above them (pooler, head; peft adapters included), not the
embeddings (lookups); peft's frozen copy of a wrapped head does not run and is not counted. Blocks
are numbered from their parameter names (`.layer.<i>.`); trainable embeddings or a soft prompt put k
at 0; when only the top (pooler, head) trains, k = L. T is the token-weighted sequence length
sum(len^2) / sum(len) (attention work per token grows with its own sequence). Full fine-tuning gives
the familiar 6N + 12·L·d·T (Kaplan et al. 2020; PaLM app. B); the head alone ~2N; the top 2 of 6
blocks ~3.3N; LoRA ~4N. Padding and recomputation are not counted: MFU compares runs of one model
across settings; it is not the hardware's measured FLOP rate.

Peak: dense tensor-core FLOP/s of the GPU from its data sheet for the run's precision (bf16/fp16, or
TF32 for fp32 matmuls); on CPU, cores x clock x FLOPs per cycle (AVX-512: 64 fp32, AVX2+FMA: 32,
else 8), an estimate. `TEXTCLF_PEAK_TFLOPS` overrides either.
"""

from __future__ import annotations

import os
import re

import torch

from textclf.training.device import cpu_flags

_BLOCK = re.compile(r"\.layers?\.(\d+)\.")
# lookups (MPNet's bias table too)
_EMBEDDING = ("embeddings", "prompt_encoder", "relative_attention_bias")

# dense (no sparsity) TFLOP/s from the vendors' data sheets: (16-bit, TF32)
_GPU_PEAKS = {
    "H200": (989.4, 494.7),
    "H100 SXM": (989.4, 494.7),
    "H100 80GB HBM3": (989.4, 494.7),
    "H100 NVL": (835.0, 417.5),
    "H100 PCIe": (756.0, 378.0),
    "H100": (756.0, 378.0),
    "A100": (312.0, 156.0),
    "L40S": (362.1, 181.0),
    "L4": (121.0, 60.0),
    "A10": (125.0, 62.5),
    "V100": (125.0, 15.7),
    "T4": (65.0, 8.1),
}


def _positions(model: torch.nn.Module, layers: int) -> list[tuple[int, int, bool]]:
    """(position, size, trainable) per parameter that runs: -1 embeddings, 0..L-1 block, L the
    top."""
    out = []
    for name, p in model.named_parameters():
        # peft keeps the wrapped head's frozen original beside its trained copy
        if "original_module" in name:
            continue
        block = _BLOCK.search(name)
        position = (
            -1 if any(e in name for e in _EMBEDDING) else int(block.group(1)) if block else layers
        )
        out.append((position, p.numel(), p.requires_grad))
    return out


def flops_per_token(model: torch.nn.Module, config, length: float) -> float:
    """Training FLOPs per real token at token-weighted sequence length `length` (formula above)."""
    # DistilBERT names them n_layers and dim
    layers = int(
        getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None) or 0
    )
    hidden = int(getattr(config, "hidden_size", None) or getattr(config, "dim", None) or 0)
    params = _positions(model, layers)
    lowest = max(0, min((pos for pos, _, trains in params if trains), default=layers))
    total = sum(n for pos, n, _ in params if pos >= 0)
    above = sum(n for pos, n, _ in params if pos >= lowest)
    trained = sum(n for pos, n, trains in params if pos >= 0 and trains)
    return 2.0 * (total + above + trained) + (4 * layers + 8 * (layers - lowest)) * hidden * length


def attention_length(tokens: int, token_squares: int) -> float:
    """The token-weighted mean sequence length, sum(len^2) / sum(len)."""
    return token_squares / max(tokens, 1)


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
    return cpu_peak_flops(dtype)


def cpu_peak_flops(dtype: torch.dtype | None = None) -> float | None:
    """threads x clock x FLOPs per cycle and core: 64 with AVX-512 (two FMA units of 16 fp32), 32
    with AVX2, 8 without; for bf16 autocast 1,024 with AMX-BF16 (Intel's per-core tile peak) and 128
    with AVX512-BF16 (two bf16 pairs per fp32 lane)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return None
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", info)
    if not mhz:
        return None
    flags = cpu_flags()
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 8
    if dtype == torch.bfloat16:
        per_cycle = 1024 if "amx_bf16" in flags else 128 if "avx512_bf16" in flags else per_cycle
    return torch.get_num_threads() * float(mhz.group(1)) * 1e6 * per_cycle
