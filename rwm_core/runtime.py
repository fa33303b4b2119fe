"""Device choice, seeding and thread settings shared by every stage."""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from collections.abc import Iterator

import numpy as np
import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; an explicit CUDA request without a GPU is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy and torch; return a numpy Generator for the caller's own draws."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def set_threads(threads: int | None = None) -> int:
    """Use the given number of intra-op threads (default: $RWM_THREADS, else all cores Snakemake gave us)."""
    n = threads or int(os.environ.get("RWM_THREADS", "0")) or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block on ``n`` intra-op threads, then restore the previous count.

    The batched simulator steps MuJoCo on its own thread pool; torch's idle OpenMP workers spin-wait next to it
    after every small policy call and take its cores. Inference on one thread is as fast at these sizes and gives
    bit-identical numbers (tested).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


PRECISIONS = ("float32", "bfloat16", "auto")


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 matrix products are done in hardware here (else they are emulated and slower than float32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(device: torch.device, precision: str) -> str:
    """``auto`` becomes bfloat16 where bf16 products are native and float32 elsewhere, so one config is fast on
    both kinds of machine without ever taking the emulated (slower) bf16 path."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bfloat16" if bf16_is_native(device) else "float32"
    return precision


def matmul_dtype(device: torch.device, precision: str = "float32") -> torch.dtype | None:
    """The dtype hand-written mixed-precision paths cast their GEMM inputs to (None = float32 throughout)."""
    if resolve_precision(device, precision) == "float32":
        return None
    _warn_if_emulated(device)
    return torch.bfloat16


def _warn_if_emulated(device: torch.device) -> None:
    if not bf16_is_native(device):
        warnings.warn(
            f"precision 'bfloat16' on a {device.type} without native bf16 matrix products: expect it to be slower "
            "than float32",
            RuntimeWarning,
            stacklevel=3,
        )


def autocast(device: torch.device, precision: str = "float32") -> contextlib.AbstractContextManager[object]:
    """Mixed-precision region for ``precision == "bfloat16"`` (a no-op for float32).

    Why opt-in: bf16 rounds every matrix-product input to 8 mantissa bits (losses agree with float32 to ~1e-5 and
    gradients to ~1%, see tests), which doubles GEMM throughput on CPUs with AVX512-BF16/AMX and on recent GPUs but
    changes the numbers; float32 keeps upstream's arithmetic.
    """
    if matmul_dtype(device, precision) is None:
        return contextlib.nullcontext()
    # no weight-cast cache: regions that also take optimiser steps (the PPO update) would otherwise keep using the
    # bf16 copies of the weights from before the first step
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
