"""Which device to run on, which mixed-precision dtype it supports, and how much memory a run used."""

from __future__ import annotations

import os
import platform
import resource
import sys
from dataclasses import dataclass

import torch


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then CPU.

    ``prefer`` (or the ``COURSE_DEVICE`` environment variable) forces one: ``"cpu"``, ``"cuda:1"``,
    or ``"lazy"``, PyTorch's lazy-tensor device. That one computes on the CPU but, like a GPU,
    refuses tensors that live elsewhere, so a run on it finds every input a notebook forgot to
    move to ``model.device`` without a GPU (``make test`` runs the chapters on it).
    """
    prefer = prefer or os.environ.get("COURSE_DEVICE") or None
    if prefer is not None:
        if torch.device(prefer).type == "lazy":
            _start_lazy_device()
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _start_lazy_device() -> None:
    import torch._lazy.ts_backend

    if not getattr(_start_lazy_device, "started", False):
        torch._lazy.ts_backend.init()
        _start_lazy_device.started = True


@dataclass(frozen=True)
class AmpChoice:
    """What mixed precision a device gets: compute ``dtype``, whether a loss scaler is needed, and why."""

    dtype: torch.dtype
    use_grad_scaler: bool
    reason: str

    @property
    def enabled(self) -> bool:
        return self.dtype != torch.float32


def amp_dtype(device: torch.device | str, capability: tuple[int, int] | None = None) -> AmpChoice:
    """The mixed-precision choice for ``device``.

    ===================  ==========  ============  ==============================================
    device               dtype       loss scaling  why
    ===================  ==========  ============  ==============================================
    CPU / MPS            float32     no            autocast on CPU is slower than fp32 here
    CUDA, capability<7   float32     no            no tensor cores (e.g. P100, K80)
    CUDA, 7.x (T4, V100) float16     yes           fp16 tensor cores; fp16 gradients underflow
    CUDA, >= 8.0 (A100)  bfloat16    no            bf16 has fp32's exponent range
    ===================  ==========  ============  ==============================================

    ``capability`` may be given (``(7, 5)`` for a T4) to ask without a GPU.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return AmpChoice(torch.float32, False, f"{device.type}: full precision")
    if capability is None:
        capability = torch.cuda.get_device_capability(device)
    if capability >= (8, 0):
        return AmpChoice(torch.bfloat16, False, f"compute capability {capability[0]}.{capability[1]} supports bf16")
    if capability >= (7, 0):
        return AmpChoice(
            torch.float16, True, f"compute capability {capability[0]}.{capability[1]}: fp16 with loss scaling"
        )
    return AmpChoice(torch.float32, False, f"compute capability {capability[0]}.{capability[1]}: no tensor cores")


def describe_hardware(device: torch.device | None = None) -> str:
    """A short human description, e.g. ``"2 CPU cores, no GPU"`` or ``"Tesla T4 (15.0 GiB, cc 7.5)"``."""
    device = device or pick_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.1f} GiB, cc {props.major}.{props.minor})"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    suffix = {"mps": ", Apple MPS", "lazy": ", lazy-tensor device (CPU-backed placement check)"}.get(
        device.type, ", no GPU")
    return f"{cores} CPU cores{suffix} ({platform.machine()})"


def peak_host_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def memory_report(device: torch.device | str | None = None) -> dict[str, float]:
    """Memory used so far, in MiB: host peak always; on CUDA also allocated, peak allocated and total."""
    device = torch.device(device) if device is not None else pick_device()
    report = {"host_peak_mb": round(peak_host_memory_mb(), 1)}
    if device.type == "cuda":
        report.update(
            gpu_allocated_mb=round(torch.cuda.memory_allocated(device) / 2**20, 1),
            gpu_peak_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
            gpu_total_mb=round(torch.cuda.get_device_properties(device).total_memory / 2**20, 1),
        )
    return report


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA/MPS out-of-memory error, whatever class the installed torch raises it as."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
