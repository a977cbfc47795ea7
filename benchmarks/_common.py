"""What both benchmarks share: the precisions to compare, the matmul peak, timing and recording.

Each loop is timed in the precision the hardware does best (``course_utils.amp_dtype``: bf16 on a CPU
with a bf16 matrix engine or on an Ampere-or-later GPU, fp16 on a T4) and in fp32, and its MFU is
taken against the peak of a matrix product in that same dtype, measured in the same run.
"""

from __future__ import annotations

import datetime
import os
import time

import torch

from course_utils.device import AmpChoice, amp_dtype, describe_hardware, mixed_precision
from course_utils.results import record_benchmark

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def precisions(device: torch.device, which: str) -> list[torch.dtype]:
    """The dtypes to time: ``both`` = fp32 and the device's choice (just fp32 when that is fp32),
    ``best`` = the device's choice only, or one named dtype (``fp32``, ``bf16``, ``fp16``)."""
    best = amp_dtype(device).dtype
    if which == "both":
        return [torch.float32] if best == torch.float32 else [torch.float32, best]
    if which == "best":
        return [best]
    if which not in DTYPES:
        raise SystemExit(f"--precision must be both, best, {', '.join(DTYPES)}; got {which!r}")
    return [DTYPES[which]]


def autocast(device: torch.device, dtype: torch.dtype):
    """The context a bare loop runs its forward pass in, the one ``fit`` uses: autocast to ``dtype``
    (with the math attention kernel on a CPU in bf16, see ``course_utils.device.mixed_precision``),
    or nothing for fp32."""
    return mixed_precision(device.type, AmpChoice(dtype, dtype == torch.float16, "benchmark"))


def fit_amp(dtype: torch.dtype):
    """``fit``'s ``amp`` argument for ``dtype``."""
    return {torch.float32: False, torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeat: int = 10) -> float:
    """Best FLOP/s of an ``(n, n) @ (n, n)`` product in ``dtype`` (2 n³ FLOPs), after one warm-up."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def machine(device: torch.device) -> dict:
    """Where and when the figures were taken; a load average above the core count means a busy machine."""
    return {
        "date": datetime.date.today().isoformat(),
        "hardware": describe_hardware(device),
        "precision_choice": f"{dtype_name(amp_dtype(device).dtype)} ({amp_dtype(device).reason})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def record(name: str, figures: dict, enabled: bool) -> None:
    """Store ``figures`` under ``benchmarks.<name>`` of ``book/results.json`` (``$COURSE_RESULTS``) when asked."""
    if enabled:
        print(f"recorded in {record_benchmark(name, figures)} under benchmarks.{name}")
