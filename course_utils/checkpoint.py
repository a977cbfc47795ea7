"""Checkpoints a run can trust: durable, atomic, resumed only by the run that wrote them.

A checkpoint holds everything ``fit`` needs to carry on as if it had never stopped: weights,
optimizer and loss-scaler state, where in which epoch it was, the random state (of every process),
the whole history so far, and a *fingerprint* of everything that changes the result. Resuming
with a different learning rate, schedule, model, loss or data would silently continue the old run,
so :func:`check` refuses a checkpoint whose fingerprint differs and says what differs.

``fit`` writes one only at a step boundary, where weights, optimizer, random state and data
position agree. A write goes to a temporary file with a name of its own, is flushed to the disk
(``fsync``), renamed over the old checkpoint, and the folder is flushed too: a crash, a full disk or
a lost mount at any moment leaves the previous checkpoint intact. Write and read failures say which
file, why, and what to do.

A checkpoint written when the run finished is marked ``finished``: running the training cell
again restores the trained weights and the finished run's history instead of training again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHECKPOINT_NAME = "checkpoint.pt"

# Optimizer options that choose a kernel, not the arithmetic: a run may resume on another device.
_KERNEL_OPTIONS = ("params", "fused", "foreach", "capturable", "differentiable", "initial_lr", "lr")
# Settings a run may change on purpose with fit(resume="extend"): how long it trains.
EXTENDABLE = ("steps", "warmup_steps")


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the message names the file, the cause and the fix.

    ``errno`` and ``filename`` are the failed write's, as on any ``OSError``.
    """

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class CheckpointReadError(RuntimeError):
    """A checkpoint file exists but cannot be read (empty, cut short or damaged)."""


class CheckpointWarning(UserWarning):
    """Training finished but its final checkpoint could not be written."""


# --------------------------------------------------------------------------- writing


def _create(path: Path):
    """Open a new file for writing; refuse to reuse a name (tests replace this to play a read-only disk)."""
    return open(path, "xb")


def _write(file, data) -> int:
    """Every byte of a checkpoint goes through here (tests replace this to play a full disk)."""
    return file.write(data)


class _Recorder:
    """What ``torch.save`` writes into: remembers the first ``OSError``, which torch re-raises as a
    ``RuntimeError`` that no longer says which file or why."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return _write(self.file, data)
        except OSError as error:
            self.error = self.error or error
            raise

    def flush(self) -> None:
        self.file.flush()


def _temp_name(path: Path) -> Path:
    """A name no other process uses: ``checkpoint.pt.<host>.<pid>.<random>.tmp`` beside ``path``."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
    return path.with_name(f"{path.name}.{host}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); Windows cannot open a folder, and needs not."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error_in(error: BaseException) -> OSError | None:
    """The ``OSError`` behind ``error`` (torch wraps the one its writer hit in a ``RuntimeError``)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.1f} MiB" if nbytes < 2**30 else f"{nbytes / 2**30:,.2f} GiB"


def write_error(cause: OSError, path: Path, needed_bytes: int | None = None) -> CheckpointWriteError:
    """A :class:`CheckpointWriteError` for ``cause`` met while writing ``path``: file, cause, fix."""
    code = errno.errorcode.get(cause.errno, "") if cause.errno is not None else ""
    reason = cause.strerror or str(cause) or type(cause).__name__
    where = display_path(path)
    if cause.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG):
        try:
            free = f"{_size(shutil.disk_usage(Path(path).parent).free)} free"
        except OSError:
            free = "free space unknown"
        needs = f", the checkpoint needs about {_size(needed_bytes)}" if needed_bytes else ""
        fix = (f"The disk is full ({free}{needs}). Free space there, or pass a checkpoint_dir on a disk "
               "with room, then call fit again: it resumes from the last checkpoint.")
    elif cause.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = ("The folder cannot be written (read-only, or no permission). Pass a checkpoint_dir you can "
               "write to (e.g. cfg.checkpoint_dir(name), or a folder on Google Drive), or checkpoint_dir=None "
               "to train without checkpoints.")
    elif cause.errno in (errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.ENAMETOOLONG, errno.EEXIST):
        fix = ("That path cannot be a folder (part of it is a file, or the name is not valid): pass another "
               "checkpoint_dir.")
    else:
        fix = ("A storage error: if the folder is on a network or Drive mount, check that it is still "
               "mounted, then call fit again: it resumes from the last checkpoint.")
    message = (f"could not write the checkpoint {where}: {reason}{f' ({code})' if code else ''}. {fix} "
               "The previous checkpoint there, if any, is kept unchanged.")
    return CheckpointWriteError(cause.errno, message, str(path))


def _nbytes(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, Mapping):
        return sum(_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(_nbytes(v) for v in state)
    return 0


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` durably and atomically.

    The bytes go to a temporary file with a unique name, which is flushed to the disk and then
    renamed over ``path``; the folder is flushed after the rename. Whatever stops the write (a full
    disk, a crash, a lost mount), ``path`` holds either the previous checkpoint or the new one, and
    the temporary file is removed. Raises :class:`CheckpointWriteError` naming the file, the cause
    and the fix.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(error, path) from error
    tmp = _temp_name(path)
    recorder = None
    try:
        with _create(tmp) as file:
            recorder = _Recorder(file)
            torch.save(state, recorder)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as error:
        try:
            tmp.unlink()
        except OSError:
            pass
        cause = (recorder.error if recorder is not None else None) or _os_error_in(error)
        if isinstance(error, Exception) and cause is not None:
            raise write_error(cause, path, _nbytes(state)) from error
        raise


def check_writable(folder: Path, keep_probe: bool = False) -> Path | None:
    """Create ``folder`` if needed and prove a file can be written in it, before any training.

    Also removes temporary files that runs on this machine left behind when they were killed
    mid-write. With ``keep_probe`` the probe file stays (and its path is returned) so that other
    processes can look for it; otherwise nothing is left behind. Raises :class:`CheckpointWriteError`.
    """
    folder = Path(folder)
    target = folder / CHECKPOINT_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(target)
        probe = _temp_name(target)
        with _create(probe) as file:
            _write(file, b"course_utils write check\n")
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        raise write_error(error, target) from error
    if keep_probe:
        return probe
    probe.unlink()
    return None


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of ``path`` written on this host by processes that no longer run."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
    for tmp in path.parent.glob(f"{path.name}.{host}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + len(host) + 2 :].split(".")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


# --------------------------------------------------------------------------- reading


def load_checkpoint(path: Path) -> dict:
    """Read the checkpoint at ``path``; a damaged file raises :class:`CheckpointReadError` naming it."""
    try:
        # weights_only=False: the file holds our own RNG states (numpy arrays, Python tuples).
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise CheckpointReadError(
            f"the checkpoint {display_path(path)} cannot be read ({type(error).__name__}: {error}): the file "
            "is empty, cut short or damaged (copied while it was written, or a disk or mount that failed). "
            "Delete it (or move it away) to start the run over, pass resume=False to overwrite it, or put "
            "back a good copy."
        ) from error
    if not isinstance(state, dict):
        raise CheckpointReadError(f"{display_path(path)} is not a checkpoint written by fit (it holds a "
                                  f"{type(state).__name__}): use another checkpoint_dir, or resume=False.")
    return state


def display_path(path: Path) -> str:
    """``path`` as a reader should see it in a stored notebook: no machine-specific prefix.

    Under ``$COURSE_CHECKPOINTS`` it reads ``$COURSE_CHECKPOINTS/...``; under the working folder,
    relative to it; under the home folder, ``~/...``.
    """
    path = Path(path).absolute()
    bases = [(os.environ.get("COURSE_CHECKPOINTS"), "$COURSE_CHECKPOINTS"), (os.getcwd(), "."),
             (str(Path.home()), "~")]
    for base, shown in bases:
        if base:
            try:
                return str(Path(shown) / path.relative_to(Path(base).expanduser().absolute()))
            except ValueError:
                continue
    return str(path)


# --------------------------------------------------------------------------- the fingerprint


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def model_structure(model: nn.Module) -> list[str]:
    """One line per module, ``"name: Type(settings)"``: dropout rates, activations, sizes, ...

    Built from each module's own ``extra_repr`` (what ``print(model)`` shows), so a different
    dropout probability or activation is a different structure.
    """
    return [f"{name or '(model)'}: {type(m).__qualname__}({m.extra_repr()})" for name, m in model.named_modules()]


def model_config(model: nn.Module) -> dict | None:
    """The model's configuration (a Hugging Face ``config``, a dataclass or a dict), as plain values."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        values = config.to_dict()
    elif is_dataclass(config) and not isinstance(config, type):
        values = asdict(config)
    elif isinstance(config, Mapping):
        values = dict(config)
    else:
        return None
    # Not the arithmetic: where it came from, the library version, the attention kernel (a resume on
    # another machine may pick another), the dtype (the parameter dtypes are fingerprinted apart).
    skip = {"transformers_version", "name_or_path", "torch_dtype", "dtype", "architectures"}
    return json.loads(json.dumps({k: v for k, v in values.items() if k not in skip and not k.startswith("_")},
                                 sort_keys=True, default=str))


def parameter_dtypes(model: nn.Module) -> str:
    """``"float32 ×6"`` or ``"bfloat16 ×2, float32 ×4"``: how many parameter tensors of each dtype."""
    counts: dict[str, int] = {}
    for p in model.parameters():
        name = str(p.dtype).replace("torch.", "")
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items()))


def _plain(value, depth: int = 0):
    """``value`` as something json can hold, stable from run to run (tensors by digest)."""
    if isinstance(value, torch.Tensor):
        return f"tensor{list(value.shape)} {str(value.dtype).replace('torch.', '')} {_tensor_digest(value)}"
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    if depth < 3 and isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if depth < 3 and isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if callable(value):
        return describe_callable(value)
    return type(value).__qualname__  # its repr may hold a memory address, which changes every run


def _tensor_digest(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous()
    return hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()[:12]


def describe_callable(fn: Callable | None) -> str:
    """A loss (or any callable) as what it computes: its name, its settings, its weights, its code."""
    if fn is None:
        return "the model's own"
    if isinstance(fn, nn.Module):
        settings = {k: _plain(v) for k, v in vars(fn).items()
                    if not k.startswith("_") and k != "training" and not isinstance(v, nn.Module)}
        settings.update({name: _plain(b) for name, b in fn.named_buffers()})
        settings.update({name: _plain(p) for name, p in fn.named_parameters()})
        return f"{type(fn).__qualname__}({json.dumps(settings, sort_keys=True, default=str)})"
    func = getattr(fn, "func", None)
    if func is not None and hasattr(fn, "args") and hasattr(fn, "keywords"):  # functools.partial
        return (f"partial({describe_callable(func)}, args={json.dumps(_plain(list(fn.args)), default=str)}, "
                f"kwargs={json.dumps(_plain(dict(fn.keywords)), sort_keys=True, default=str)})")
    name = f"{getattr(fn, '__module__', None) or ''}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    code = getattr(fn, "__code__", None)
    if code is None:
        return name
    closure = [_plain(cell.cell_contents) for cell in (getattr(fn, "__closure__", None) or ())]
    body = _digest([code.co_code.hex(), [_plain(c) for c in code.co_consts], closure, _plain(fn.__defaults__)])
    return f"{name} (code {body})"


def data_digest(data, samples: int = 32) -> str:
    """A cheap digest of a map-style dataset: ``samples`` examples spread over it, first and last included.

    Reads those examples only, with every random generator's state put back afterwards, so a
    dataset that draws at random when indexed does not shift the training run's random stream.
    """
    n = len(data)
    indices = sorted({round(i * (n - 1) / max(1, samples - 1)) for i in range(min(samples, n))})
    state = rng_state()
    try:
        items = [data[i] for i in indices]
    finally:
        set_rng_state(state)
    digest = hashlib.sha256()
    for item in items:
        _feed(digest, item)
    return f"{n:,} examples, {len(indices)} sampled: {digest.hexdigest()[:12]}"


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(f"t{value.dtype}{list(value.shape)}".encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"a{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
    elif isinstance(value, Mapping):
        for k in sorted(value, key=str):
            digest.update(f"k{k}".encode())
            _feed(digest, value[k])
    elif isinstance(value, (list, tuple)):
        digest.update(f"l{len(value)}".encode())
        for v in value:
            _feed(digest, v)
    elif isinstance(value, (bool, int, float, str, bytes, type(None), np.generic)):
        digest.update(f"v{type(value).__name__}{value!r}".encode())
    else:
        digest.update(f"o{type(value).__qualname__}".encode())


def run_fingerprint(model: nn.Module, optimizer: torch.optim.Optimizer, base_lrs: Sequence[float],
                    lengths: Sequence[int] | None = None, **settings) -> dict:
    """Everything that changes what a run computes, as plain values that compare with ``==``.

    The model counts by its parameter names and shapes, its structure (every module's settings:
    dropout, activation, sizes), its configuration and its parameter dtypes; the optimizer by its
    class and per-group settings (learning rate, betas, weight decay, ...); the data order by the
    example count, seed, shuffle and length grouping. ``settings`` adds the rest (schedule,
    warm-up, steps, clipping, precision, batch, the loss, a digest of the data).
    """
    shapes = [(name, list(p.shape)) for name, p in model.named_parameters()]
    groups = [{k: v for k, v in g.items() if k not in _KERNEL_OPTIONS} for g in optimizer.param_groups]
    fingerprint = {
        "model": f"{type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters "
                 f"(names and shapes {_digest(shapes)})",
        "model structure": model_structure(model),
        "model config": model_config(model),
        "parameter dtypes": parameter_dtypes(model),
        "optimizer": type(optimizer).__name__,
        "learning rate": [float(lr) for lr in base_lrs],
        "optimizer settings": json.loads(json.dumps(groups, default=str)),
        "length grouping": None if lengths is None else _digest(list(lengths)),
        **settings,
    }
    return fingerprint


def _change(key: str, old, new) -> str:
    """One difference, readable: the changed entries of a config or structure, not the whole of it."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
        shown = ", ".join(f"{k} {old.get(k, 'not set')} → {new.get(k, 'not set')}" for k in keys[:4])
        return f"{key}: {shown}{', ...' if len(keys) > 4 else ''}"
    if isinstance(old, list) and isinstance(new, list) and all(isinstance(v, str) for v in old + new):
        gone = [line for line in old if line not in new]
        came = [line for line in new if line not in old]
        if gone or came:
            return f"{key}: {'; '.join(gone[:2]) or 'nothing'} → {'; '.join(came[:2]) or 'nothing'}"
    return f"{key}: {_short(old)} → {_short(new)}"


def _short(value) -> str:
    return f"[{len(value)} entries]" if isinstance(value, list) and len(value) > 4 else str(value)


def describe_difference(old: dict, new: dict, keys: Sequence[str] | None = None) -> str:
    """``"learning rate: [0.0001] → [0.0002]; steps: 800 → 1600"``: what changed between two runs."""
    keys = keys if keys is not None else different_keys(old, new)
    return "; ".join(_change(k, old.get(k, "not recorded"), new.get(k, "not recorded")) for k in keys)


def different_keys(old: dict, new: dict) -> list[str]:
    return [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]


def check(state: dict, fingerprint: dict, path: Path, extend: bool = False) -> list[str]:
    """Refuse ``state`` (read from ``path``) unless the run that wrote it is this run.

    With ``extend``, the step count (and a warm-up given as a fraction of it) may differ: those
    keys are returned. Raises ``ValueError`` naming every difference, and the way out.
    """
    old = state.get("fingerprint")
    if "position" not in state or not isinstance(old, dict):
        raise ValueError(
            f"the checkpoint {display_path(path)} was written by an older version of fit, which did not "
            "record everything that changes a run. Use another checkpoint_dir for this run, or pass "
            "resume=False to start over (the old checkpoint is then overwritten).")
    keys = different_keys(old, fingerprint)
    unrecorded = [k for k in keys if k not in old]
    if unrecorded and unrecorded == keys:  # an earlier course_utils: resume on what it did record
        import warnings

        warnings.warn(f"the checkpoint {display_path(path)} was written by an earlier version of course_utils, "
                      f"which did not record {', '.join(unrecorded)}: resuming on the settings it did record. "
                      "If you changed any of those since, pass resume=False to start over.",
                      CheckpointWarning, stacklevel=3)
        return []
    if not keys:
        return []
    if extend and set(keys) <= set(EXTENDABLE):
        return keys
    difference = describe_difference(old, fingerprint, keys)
    message = (f"the checkpoint in {display_path(path.parent)} was written by a different run ({difference}). "
               "Resuming it would continue the old run with the old settings. Use another checkpoint_dir "
               "for the new run (e.g. cfg.checkpoint_dir('name_v2')), or pass resume=False to start over "
               "(the old checkpoint is then overwritten).")
    if set(keys) <= set(EXTENDABLE):
        done = state["position"].get("step", 0)
        message += (f" Only the length differs: to train that run further on purpose (it has done {done} "
                    f"of {old.get('steps')} steps), pass resume='extend' with the new step count.")
    raise ValueError(message)


# --------------------------------------------------------------------------- random state


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- a run's checkpoint


@dataclass
class Position:
    """Where a run is: optimizer steps done, the epoch, the next step-group in it, the micro-batch."""

    step: int = 0
    epoch: int = 0
    group: int = 0
    batch_size: int = 1
    accumulation: int = 1
    finished: bool = False
    extra: dict = field(default_factory=dict)


def save(path: Path | None, *, model, optimizer, scaler, position: Position, history: dict,
         fingerprint: dict, rng_by_rank: list | None = None) -> float:
    """Write the run's checkpoint to ``path`` (nothing when ``None``); return the seconds it took.

    ``rng_by_rank``: every process's random state in a data-parallel run (each resumes its own).
    """
    if path is None:
        return 0.0
    start = time.perf_counter()
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "position": vars(position).copy(), "history": history, "rng": rng_state(), "fingerprint": fingerprint,
    }
    if rng_by_rank is not None:
        state["rng_by_rank"] = rng_by_rank
    save_checkpoint(path, state)
    return time.perf_counter() - start


def read(path: Path | None) -> dict | None:
    """The checkpoint at ``path``, or ``None`` when there is none."""
    if path is None or not path.exists():
        return None
    return load_checkpoint(path)


def load_into(state: dict, *, model, optimizer, scaler, rank: int = 0) -> tuple[Position, dict]:
    """Put a checked checkpoint's weights, optimizer, scaler and random state (this ``rank``'s) in place."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    by_rank = state.get("rng_by_rank")
    set_rng_state(by_rank[rank] if by_rank is not None and rank < len(by_rank) else state["rng"])
    return Position(**state["position"]), state["history"]


def restore(path: Path | None, *, model, optimizer, scaler, fingerprint: dict) -> tuple[Position, dict] | None:
    """Load the checkpoint at ``path`` into ``model``/``optimizer``/``scaler`` if there is one.

    Returns ``(position, history dict)``, or ``None`` when there is no checkpoint to resume.
    Raises ``ValueError`` naming every difference when the checkpoint was written by another run.
    """
    state = read(path)
    if state is None:
        return None
    check(state, fingerprint, path)
    return load_into(state, model=model, optimizer=optimizer, scaler=scaler)
