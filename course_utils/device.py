"""Which device to run on, which mixed-precision dtype it supports, and how much memory a run used.

On a CPU the precision follows its bf16 engine: AMX multiplies bf16 tiles an order of magnitude
faster than fp32, AVX512-BF16 about twice as fast (measured once and kept), none: fp32.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


class mixed_precision:
    """A reusable context for the forward pass in ``choice``'s precision on ``device_type``:
    ``torch.autocast`` when ``choice.enabled``, nothing in fp32.

    On a CPU in bf16 it also selects PyTorch's plain ("math") attention kernel. The fused CPU
    flash-attention kernel's backward pass is far slower in bf16 than in fp32 (torch 2.13 on an
    AMX Xeon, MiniLM, batch 32 x ~39 tokens: 25 ms against 2.9 ms per layer), enough to cancel all
    that AMX gains on the matrix products; with the math kernel, whose matrix products run on AMX, a
    chapter-7 training step took 0.17 s against 0.35 s in fp32. ``transformers``' eager attention
    (matrix products under autocast, softmax in fp32) was faster still, 0.16 s, so
    ``models.load_classifier`` picks it where training runs on such a CPU; this context covers every
    other model. The backward pass follows the kernel the forward pass chose.

    Example::

        precision = mixed_precision("cpu", amp_dtype("cpu"))
        with precision:
            loss = model(**batch).loss
        loss.backward()
    """

    def __init__(self, device_type: str, choice: AmpChoice):
        self.device_type, self.choice = device_type, choice
        self._stacks: list = []

    @property
    def math_attention(self) -> bool:
        return self.choice.enabled and self.device_type == "cpu" and self.choice.dtype == torch.bfloat16

    def __enter__(self):
        import contextlib

        stack = contextlib.ExitStack()
        if self.choice.enabled:
            stack.enter_context(torch.autocast(self.device_type, dtype=self.choice.dtype))
        if self.math_attention:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        self._stacks.append(stack)
        return self

    def __exit__(self, *exc):
        return self._stacks.pop().__exit__(*exc)


# --------------------------------------------------------------------------- the CPU's bf16 engine

# A CPU without a bf16 matrix engine must run bf16 matrix products at least this much faster than
# fp32 for autocast to pay: the casts and the parts of a step that stay in fp32 (or run slower in
# bf16) eat the gain. Measured on an AMD EPYC with AVX512-BF16 and no AMX: bf16 matmul 2.8x fp32,
# yet chapter 7's 1,600 fine-tuning steps took 511 s under bf16 autocast against 521 s in fp32 (one
# machine, one day), 0.7 points less accurate: 2% faster is not worth it.
BF16_MIN_SPEEDUP = 4.0
CPU_BF16_ENV = "COURSE_CPU_BF16"  # "1" or "0" overrides the choice on a CPU (e.g. to compare runs)
# The flags we read: torch's name -> /proc/cpuinfo's name ("bf16" is ARM's).
_FLAGS = {"amx_bf16": "amx_bf16", "amx_tile": "amx_tile", "avx512_bf16": "avx512_bf16",
          "avx512_f": "avx512f", "avx2": "avx2", "bf16": "bf16"}


def cpu_features() -> dict[str, bool]:
    """The CPU flags that decide bf16 on the CPU: ``amx_bf16``, ``amx_tile``, ``avx512_bf16``, ...

    Each flag as ``torch.cpu.get_capabilities()`` reports it (torch ≥ 2.8), else as
    ``/proc/cpuinfo`` lists it (older torch; ``bf16`` on ARM); ``False`` where neither knows it.

    Example::

        >>> cpu_features()["amx_bf16"]   # True on an Intel Xeon of 2023 or later
        False
    """
    reported: dict = {}
    get = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if get is not None:
        try:
            reported = dict(get())
        except Exception:  # cpuinfo could not read this CPU: /proc/cpuinfo decides
            reported = {}
    listed = _proc_cpuinfo_flags()
    return {ours: bool(reported[ours]) if ours in reported else theirs in listed for ours, theirs in _FLAGS.items()}


def _proc_cpuinfo_flags() -> set[str]:
    """The ``flags`` (x86) or ``Features`` (ARM) of the first CPU in ``/proc/cpuinfo``; empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


def cpu_matrix_engine(features: dict[str, bool] | None = None) -> str:
    """Name of the CPU's bf16 matrix engine: ``"AMX-BF16"``, ``"AVX512-BF16"``, ``"ARM-BF16"`` or ``"none"``.

    AMX (Intel Xeon since 2023) multiplies bf16 tiles in a dedicated unit, an order of magnitude
    faster than fp32. AVX512-BF16 (Intel Cooper Lake, AMD Zen 4 and later) and ARM's BF16 only add
    bf16 dot-product instructions to the vector unit: about 2× fp32 at best.

    Example::

        >>> cpu_matrix_engine({"amx_bf16": True, "amx_tile": True, "avx512_bf16": True})
        'AMX-BF16'
    """
    features = cpu_features() if features is None else features
    if features.get("amx_bf16") and features.get("amx_tile"):
        return "AMX-BF16"
    if features.get("avx512_bf16"):
        return "AVX512-BF16"
    if features.get("bf16"):
        return "ARM-BF16"
    return "none"


def matmul_flops(dtype: torch.dtype, n: int = 1024, repeat: int = 5, device: torch.device | str = "cpu") -> float:
    """Median FLOP/s of an ``(n, n) @ (n, n)`` product in ``dtype`` on ``device`` (2 n³ FLOPs each).

    Example::

        >>> matmul_flops(torch.float32) > 1e9   # any CPU of the last decade
        True
    """
    device = torch.device(device)
    # A generator of its own: drawing from the global one would shift every later random number
    # (dropout masks, initial weights) of a run that happened to measure first.
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=gen).to(dtype)
    b = torch.randn(n, n, device=device, generator=gen).to(dtype)
    times = []
    for _ in range(repeat + 1):  # the first product warms up the kernel and its buffers
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times[1:])


def measured_bf16_speedup(*, refresh: bool = False) -> float:
    """How many times faster a bf16 matrix product runs than an fp32 one on this CPU (1024², median).

    About a second the first time; the figure is then kept on disk per CPU, torch version and thread
    count (``$XDG_CACHE_HOME/course_utils/cpu_bf16.json``), so every notebook makes the same choice.
    A busy machine measures badly: ``refresh=True`` measures again.
    """
    key = f"{cpu_name()} ({platform.machine()}), torch {torch.__version__}, {torch.get_num_threads()} threads"
    cache = _cache_path()
    try:
        known = json.loads(cache.read_text()) if cache.exists() else {}
    except (OSError, ValueError):
        known = {}
    if not refresh and isinstance(known.get(key), (int, float)):
        return float(known[key])
    with torch.no_grad():
        speedup = matmul_flops(torch.bfloat16) / matmul_flops(torch.float32)
    known[key] = round(speedup, 3)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(known, indent=1))
        os.replace(partial, cache)  # atomic: another notebook never reads half a file
    except OSError:  # a read-only home: measure again next time
        pass
    return speedup


def _cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "course_utils" / "cpu_bf16.json"


def cpu_name() -> str:
    """The CPU's model name as torch's cpuinfo reads it, e.g. ``"AMD EPYC"``; the platform's guess elsewhere."""
    get = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    try:
        name = dict(get()).get("cpu_name") if get is not None else None
    except Exception:
        name = None
    return str(name or platform.processor() or "unknown CPU")


def _cpu_amp(features: dict[str, bool] | None, bf16_speedup: float | None) -> AmpChoice:
    """The CPU rows of :func:`amp_dtype`'s table."""
    engine = cpu_matrix_engine(features)
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        dtype = torch.bfloat16 if forced == "1" else torch.float32
        return AmpChoice(dtype, False, f"{CPU_BF16_ENV}={forced} set ({engine} engine)")
    if engine == "AMX-BF16":
        return AmpChoice(torch.bfloat16, False, "AMX-BF16 matrix engine")
    if engine == "none":
        return AmpChoice(torch.float32, False, "no bf16 matrix engine on this CPU")
    speedup = measured_bf16_speedup() if bf16_speedup is None else bf16_speedup
    if speedup >= BF16_MIN_SPEEDUP:
        return AmpChoice(torch.bfloat16, False, f"{engine} without AMX; bf16 matmul {speedup:.1f}x fp32 here")
    return AmpChoice(
        torch.float32, False,
        f"{engine} without AMX; bf16 matmul only {speedup:.1f}x fp32 here",
    )


def amp_dtype(
    device: torch.device | str,
    capability: tuple[int, int] | None = None,
    *,
    cpu_flags: dict[str, bool] | None = None,
    bf16_speedup: float | None = None,
) -> AmpChoice:
    """The mixed-precision choice for ``device``.

    ====================  ==========  ============  ==============================================
    device                dtype       loss scaling  why
    ====================  ==========  ============  ==============================================
    MPS                   float32     no            not measured for this course: full precision
    CPU without bf16      float32     no            no bf16 instructions: autocast only adds casts
    CPU, AVX512-BF16 or   float32     no            bf16 dot products in the vector unit: bf16
    ARM BF16, no AMX      or bfloat16               only if its matmul measures ≥ 4× fp32 here
    CPU with AMX-BF16     bfloat16    no            a bf16 matrix engine: ~12× fp32 matmul (Xeon)
    CUDA, capability<7    float32     no            no tensor cores (e.g. P100, K80)
    CUDA, 7.x (T4, V100)  float16     yes           fp16 tensor cores; fp16 gradients underflow
    CUDA, >= 8.0 (A100)   bfloat16    no            bf16 has fp32's exponent range
    ====================  ==========  ============  ==============================================

    ``capability`` may be given (``(7, 5)`` for a T4) to ask without a GPU; likewise
    ``cpu_flags`` (as :func:`cpu_features` returns them) and ``bf16_speedup``
    (bf16 over fp32 matmul speed, else :func:`measured_bf16_speedup`) for a CPU.
    ``$COURSE_CPU_BF16=1`` or ``0`` overrides every CPU row (to time or compare the two).

    Example::

        >>> amp_dtype("cpu", cpu_flags={"amx_bf16": True, "amx_tile": True}).dtype
        torch.bfloat16
    """
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_amp(cpu_flags, bf16_speedup)
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


def describe_hardware(device: torch.device | None = None, features: dict[str, bool] | None = None) -> str:
    """A short human description, e.g. ``"2 CPU cores (AMX-BF16), no GPU (x86_64)"`` or
    ``"Tesla T4 (15.0 GiB, cc 7.5)"``. A CPU's bf16 matrix engine is named (``no bf16 engine`` when none)."""
    device = device or pick_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({props.total_memory / 2**30:.1f} GiB, cc {props.major}.{props.minor})"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    engine = cpu_matrix_engine(features)
    engine = "no bf16 engine" if engine == "none" else engine
    suffix = {"mps": ", Apple MPS", "lazy": ", lazy-tensor device (CPU-backed placement check)"}.get(
        device.type, ", no GPU")
    return f"{cores} CPU cores ({engine}){suffix} ({platform.machine()})"


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
